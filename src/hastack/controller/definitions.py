"""The routers the network backend defines, read in a thread of their own.

The tick renews the leader's one-second lease, so it must not wait for the backend: Neutron answers
`list routers` in seconds when it is busy, and a leader whose tick waited lost its lead. A read runs every
DEFINITIONS_S, and sooner (at most every ASKED_S) while a router seems unbound: it may have been deleted
since the last read. Such a router is offered for placement only once a read that began after it was
first seen unbound has listed it (placing a deleted router fails, and says so every tick). A failed read
keeps the last list.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection, Sequence

from hastack.backends import BackendError

DEFINITIONS_S = 5.0  # routers change rarely, and reading them is not free
ASKED_S = 0.5


class Definitions:
    def __init__(self, read: Callable[[], Sequence[str]], mono: Callable[[], float]) -> None:
        self.read, self.mono = read, mono
        self.last: tuple[tuple[str, ...], float] = ((), -1e9)  # the last list read, and when its read began
        self.started = -1e9  # when the last read began
        self.thread: threading.Thread | None = None
        self.unbound_since: dict[str, float] = {}

    @property
    def routers(self) -> tuple[str, ...]:
        return self.last[0]

    def step(self, bound: Collection[str]) -> tuple[str, ...]:
        """The routers to consider: those of the last read, less any seen unbound only since that read
        began. Starts a read if one is due and none runs."""
        now = self.mono()
        routers, began = self.last
        self.unbound_since = {r: self.unbound_since.get(r, now) for r in routers if r not in bound}
        unconfirmed = {r for r, since in self.unbound_since.items() if since > began}
        since = now - self.started
        due = since >= DEFINITIONS_S or (bool(unconfirmed) and since >= ASKED_S)
        if due and not (self.thread is not None and self.thread.is_alive()):
            self.started = now
            self.thread = threading.Thread(target=self._run, args=(now,), name="definitions", daemon=True)
            self.thread.start()
        return tuple(r for r in routers if r not in unconfirmed)

    def _run(self, began: float) -> None:
        with contextlib.suppress(BackendError):
            self.last = (tuple(self.read()), began)
