"""The leader keeps every HAProxy's servers as operators asked: each drained host's in DRAIN, every other
one READY (`show servers state` / `set server` over the runtime API).

Checked when the drains change, else every DRAINS_S (a restarted HAProxy forgets them), in a thread of its
own: a frozen HAProxy answers nothing until its timeout, and a tick that waited for it would let the
leader's lease run out. What a run changed is said by the tick after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from hastack.backends import BackendError

# Each check is a TLS handshake per HAProxy: too much for every 100 ms tick.
DRAINS_S = 1.0


class Balancer(Protocol):
    """A load balancer's runtime API (backends.haproxy.HAProxyRuntime)."""

    def servers(self) -> list[dict[str, str]]: ...
    def is_drained(self, row: dict[str, str]) -> bool: ...
    def set_state(self, backend: str, server: str, state: str) -> None: ...


class Drains:
    """Reconciles the balancers with the drained hosts, one run at a time, off the tick's thread."""

    def __init__(
        self, balancers: Sequence[Balancer], api_servers: Collection[str], mono: Callable[[], float]
    ):
        self.balancers, self.api_servers, self.mono = balancers, api_servers, mono
        self.checked: tuple[float, frozenset[str]] = (-1e9, frozenset())
        self.thread: threading.Thread | None = None
        self.said = ""

    def step(self, want: frozenset[str]) -> str:
        """Start a run if one is due and none is running; what the last finished run changed, once."""
        said, self.said = self.said, ""
        due = want != self.checked[1] or self.mono() - self.checked[0] >= DRAINS_S
        if due and not (self.thread is not None and self.thread.is_alive()):
            self.checked = (self.mono(), want)
            self.thread = threading.Thread(target=self._run, args=(want,), name="drains")
            self.thread.start()
        return said

    def _run(self, want: frozenset[str]) -> None:
        changed, errors = 0, []
        for lb in self.balancers:
            try:
                for row in lb.servers():
                    host, backend = row["srv_name"], row["be_name"]
                    if (host in want) != lb.is_drained(row) and host in self.api_servers:
                        lb.set_state(backend, host, "drain" if host in want else "ready")
                        changed += 1
            except BackendError as e:
                errors.append(str(e))
        said = f"; {changed} HAProxy servers set" if changed else ""
        self.said = said + (f"; HAProxy unreachable: {errors[0]}" if errors else "")
