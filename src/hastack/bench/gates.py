"""Dual-active, measured on the data plane: could, and did, a router forward on more than one node at once?

A sampler reads, every few milliseconds, each router namespace on each network node (through in-process
libnftables handles: reading a frozen node's kernel needs none of its processes), gated or not: whether
its gate's `alive` element is present (a namespace without a gate counts as open once forwarding is on
in it: nothing stops it then), and
the packets a counter of the sampler's own let through (a forward chain of its own, after the gate, put
into every router namespace it sees and removed when it stops). `dual_active` turns the samples into,
per router, the time during which two nodes could forward; `dual_forwarding`, the time during which two
nodes did.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hastack.agent.gate import TABLE, GateError, apply, in_netns_thread, netns_path

PROBE_TABLE = "hastack_probe"
# After the gate (priority -300) and before nothing else of hastack's: counts what the namespace forwarded.
PROBE = f"""table inet {PROBE_TABLE} {{
  chain forwarded {{
    type filter hook forward priority 100; policy accept;
    counter
  }}
}}
"""


@dataclass(frozen=True)
class Sample:
    t: float
    open: Mapping[str, frozenset[str]]  # router -> nodes whose gate for it is open (or that have none)
    forwarded: Mapping[str, Mapping[str, int]]  # router -> node -> packets it forwarded so far


def read_namespace(ruleset: dict[str, object], forwarding: bool = True) -> tuple[bool, int | None]:
    """From `nft -j list ruleset` of a router namespace and whether IPv4 forwarding is on in it: whether
    it can forward (its gate open, or no gate and forwarding on) and the packets the probe counted (None:
    no probe there yet). Pure."""
    gated, is_open, packets = False, False, None
    items = ruleset.get("nftables", [])
    for item in items if isinstance(items, list) else []:
        table = item.get("table", {})
        if table.get("family") == "inet" and table.get("name") == TABLE:
            gated = True
        found = item.get("set", {})
        if (found.get("family"), found.get("table"), found.get("name")) == ("inet", TABLE, "alive"):
            is_open = bool(found.get("elem"))
        rule = item.get("rule", {})
        if rule.get("table") == PROBE_TABLE:
            for expr in rule.get("expr", []):
                if "counter" in expr:
                    packets = int(expr["counter"]["packets"])
    return (is_open or (forwarding and not gated)), packets


def dual_active(samples: Sequence[Sample]) -> dict[str, float]:
    """Per router, seconds during which its gate was open on two or more nodes (each sample counts until the
    next one, so the result is an upper bound at the sampling resolution). Pure."""
    out: dict[str, float] = {}
    for here, after in itertools.pairwise(samples):
        for router, nodes in here.open.items():
            if len(nodes) >= 2:
                out[router] = out.get(router, 0.0) + (after.t - here.t)
    return out


def dual_forwarding(samples: Sequence[Sample]) -> dict[str, float]:
    """Per router, seconds of the sampling intervals in which two or more nodes' counters rose: packets of
    one router forwarded on two nodes at once (an upper bound at the sampling resolution). Pure."""
    out: dict[str, float] = {}
    for before, after in itertools.pairwise(samples):
        for router, counts in after.forwarded.items():
            old = before.forwarded.get(router, {})
            rose = [n for n, c in counts.items() if n in old and c > old[n]]
            if len(rose) >= 2:
                out[router] = out.get(router, 0.0) + (after.t - before.t)
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
        # namespace -> (inode, libnftables context, its ip_forward sysctl opened inside it)
        self.readers: dict[str, tuple[int, Any, int]] = {}
        self.installer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="probe-installer")
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
            self._remove_probes()

    def sample(self) -> Sample:
        opened: dict[str, set[str]] = {}
        counts: dict[str, dict[str, int]] = {}
        for (node, router), ns in self.netns_of.items():
            try:
                is_open, packets = read_namespace(*self._list(ns))
            except (GateError, OSError, ValueError):
                if (gone := self.readers.pop(ns, None)) is not None:
                    os.close(gone[2])
                continue  # no such namespace (not built, removed meanwhile)
            if packets is not None:
                counts.setdefault(router, {})[node] = packets
            if is_open:
                opened.setdefault(router, set()).add(node)
        return Sample(time.time(), {r: frozenset(n) for r, n in opened.items()}, counts)

    def _list(self, ns: str) -> tuple[dict[str, Any], bool]:
        """The namespace's probe and gate tables, and whether it forwards. Only reads: a namespace seen
        for the first time (by inode) gets its probe from the installer thread, since an nf_tables write
        waits for the namespace's commit lock, which Neutron's iptables-restore holds for a second or
        more while it builds a router (the sampler stalled on it)."""
        inode = os.stat(netns_path(ns)).st_ino
        held = self.readers.get(ns)
        if held is None or held[0] != inode:
            if held is not None:  # rebuilt: out of the map before closing, so nothing closes it twice
                del self.readers[ns]
                os.close(held[2])
            nft, forward_fd = in_netns_thread(ns, _open_reader)
            held = self.readers[ns] = (inode, nft, forward_fd)
            if nft.cmd(f"list table inet {PROBE_TABLE}")[0] != 0:
                self.installer.submit(_install_probe, ns, inode)
        items: list[Any] = []
        for table in (PROBE_TABLE, TABLE):  # either may be missing: no probe yet, no gate
            rc, out, _err = held[1].cmd(f"list table inet {table}")
            if rc == 0:
                items += json.loads(out).get("nftables", [])
        return {"nftables": items}, os.pread(held[2], 1, 0) == b"1"

    def _remove_probes(self) -> None:
        self.installer.shutdown(wait=True, cancel_futures=True)
        for ns, (inode, nft, forward_fd) in list(self.readers.items()):
            try:
                if os.stat(netns_path(ns)).st_ino == inode:
                    nft.cmd(f"delete table inet {PROBE_TABLE}")
            except OSError:
                pass  # gone: its probe went with it
            os.close(forward_fd)
        self.readers.clear()  # never keep a deleted namespace alive

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


def _install_probe(ns: str, inode: int) -> None:
    """Put the probe into the namespace, unless it was replaced meanwhile (best effort: a namespace
    without its probe is still sampled, its packets not counted)."""
    try:
        if os.stat(netns_path(ns)).st_ino == inode:
            apply(ns, f"table inet {PROBE_TABLE}\ndelete table inet {PROBE_TABLE}\n{PROBE}")
    except (OSError, GateError):
        pass


def _open_reader() -> tuple[Any, int]:
    """In the namespace's thread: a libnftables context and the namespace's own ip_forward sysctl (a
    /proc/sys/net file belongs to the network namespace of whoever opened it)."""
    import nftables  # type: ignore[import-untyped]  # Debian's python3-nftables, linked by setup.sh

    nft = nftables.Nftables()
    nft.set_json_output(True)
    rc, _out, err = nft.cmd("list tables")  # opens its socket now, in this namespace
    if rc != 0:
        raise GateError(str(err).strip())
    return nft, os.open("/proc/sys/net/ipv4/ip_forward", os.O_RDONLY)
