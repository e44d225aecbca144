"""Dual-active, measured on the data plane: is a router's kernel gate open on more than one node at once?

A sampler reads, every few milliseconds, the gate of each router namespace on each network node (through
in-process libnftables handles: reading a frozen node's kernel needs none of its processes): whether the
`alive` element is present (the namespace would forward) and the accept rule's packet counter (it did
forward). `dual_active` turns the samples into, per router, the time during which two nodes could forward.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hastack.agent.gate import GateError, Gates
from hastack.lab import system


@dataclass(frozen=True)
class Sample:
    t: float
    open: Mapping[str, frozenset[str]]  # router -> nodes whose gate for it is open
    forwarded: Mapping[str, Mapping[str, int]]  # router -> node -> packets let through so far


def dual_active(samples: Sequence[Sample]) -> dict[str, float]:
    """Per router, seconds during which its gate was open on two or more nodes (each sample counts until the
    next one, so the result is an upper bound at the sampling resolution). Pure."""
    out: dict[str, float] = {}
    for here, after in itertools.pairwise(samples):
        for router, nodes in here.open.items():
            if len(nodes) >= 2:
                out[router] = out.get(router, 0.0) + (after.t - here.t)
    return out


def forwarding_nodes(samples: Sequence[Sample], router: str) -> list[tuple[float, str]]:
    """(time, node) each time a node's counter for `router` went up: who actually forwarded, when. Pure."""
    seen: dict[str, int] = {}
    events = []
    for s in samples:
        for node, count in s.forwarded.get(router, {}).items():
            if node in seen and count > seen[node]:
                events.append((s.t, node))
            seen[node] = count
    return events


class GateSampler(threading.Thread):
    """Samples the gates of `routers` on `nodes` every `interval_s` until stopped (bounded by `max_s`)."""

    def __init__(self, netns_of: Mapping[tuple[str, str], str], interval_s: float = 0.01, max_s: float = 300):
        super().__init__(name="gate-sampler", daemon=True)
        self.netns_of, self.interval_s, self.max_s = netns_of, interval_s, max_s
        self.samples: list[Sample] = []
        self.done = threading.Event()
        self.gates = Gates()
        self.error: BaseException | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.max_s
        try:
            while not self.done.is_set() and time.monotonic() < deadline:
                self.samples.append(self.sample())
                self.done.wait(self.interval_s)
        except Exception as e:  # reported by stop(): a sampler that died must not read as "no dual-active"
            self.error = e
        finally:
            self.gates.keep_only([])

    def sample(self) -> Sample:
        opened: dict[str, set[str]] = {}
        counts: dict[str, dict[str, int]] = {}
        alive = []
        for (node, router), ns in self.netns_of.items():
            if not system.netns_exists(ns):
                continue
            try:
                is_open = self.gates.is_open(ns)
                counts.setdefault(router, {})[node] = self.gates.forwarded(ns)
            except GateError:
                continue  # removed between the check and the read
            alive.append(ns)
            if is_open:
                opened.setdefault(router, set()).add(node)
        self.gates.keep_only(alive)  # never keep a deleted namespace alive
        return Sample(time.time(), {r: frozenset(n) for r, n in opened.items()}, counts)

    def stop(self) -> list[Sample]:
        """The samples; RuntimeError if sampling failed or left a gap longer than a second."""
        self.done.set()
        self.join()
        if self.error is not None:
            raise RuntimeError(f"the gate sampler failed: {self.error!r}") from self.error
        longest = max((b.t - a.t for a, b in itertools.pairwise(self.samples)), default=0.0)
        if longest > 1.0:
            raise RuntimeError(f"the gate sampler paused for {longest:.1f} s: dual-active unmeasured")
        return self.samples
