"""The controller's store client: it knows whether the store answers, and keeps the failsafe promise.

Every store call a controller makes goes through `GuardedStore`. It records when the last call completed
and whether it failed, which calls are outstanding, and which writes change what the node agents' gates
follow (the bindings, the policy: `is_guarded(key)`). That is what a controller needs to answer a node
agent's failsafe round (DESIGN-fencing.md, "Surviving the loss of etcd"):

- `yes` only while the store does not answer this controller, no guarded write is in flight, and none has
  an unknown outcome (it failed, and no read started after that failure has succeeded since);
- a `yes` is a promise: no guarded write is sent for one lease TTL from the answer. A guarded write asked
  for meanwhile fails with StoreError at once, whatever path it came from (a tick's moves, the reconcile,
  an operator's move, a policy change).

Times are the controller's monotonic clock; nothing here compares clocks between hosts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from hastack.store.base import Compare, KeyValue, Op, Store, StoreError

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    yes: bool
    reason: str  # one phrase: why yes, or why not


class GuardedStore(Store):
    def __init__(
        self,
        inner: Store,
        is_guarded: Callable[[str], bool],
        promise_s: float,
        stuck_s: float,
        clock: Callable[[], float],
    ) -> None:
        """`promise_s`: how long a yes binds (the node lease TTL); `stuck_s`: a call outstanding this long
        counts as failed (the agents' round timeout: they cannot wait for more)."""
        self.inner, self.is_guarded, self.clock = inner, is_guarded, clock
        self.promise_s, self.stuck_s = promise_s, stuck_s
        self._lock = threading.Lock()
        self._outstanding: dict[int, float] = {}  # call number -> when it started
        self._calls = 0
        self._last_ok = True
        self._writes = 0  # guarded writes in flight
        # A guarded write failed, outcome unknown: the number of the last call started by then.
        self._unknown_after: int | None = None
        # A controller that starts counts its start as a promise: a restart between a yes and its end
        # must not let this process write sooner than the one before it promised.
        self._promise_until = clock() + promise_s
        self.switched_off = False  # the control key `failsafe` is `off` (set by the controller's read)

    # ---- the failsafe side ----

    def answer(self) -> Answer:
        """A node agent asks whether it may keep its open gates: answer, and promise if yes."""
        with self._lock:
            now = self.clock()
            why_not = self._why_not(now)
            if why_not:
                return Answer(False, why_not)
            self._promise_until = max(self._promise_until, now + self.promise_s)
            return Answer(True, "the store does not answer me; no binding write for one lease TTL")

    def _why_not(self, now: float) -> str:
        if self.switched_off:
            return "failsafe is switched off"
        if self._writes:
            return "a binding write of mine is in flight"
        if self._unknown_after is not None:
            return "a binding write of mine has an unknown outcome"
        stuck = any(now - started > self.stuck_s for started in self._outstanding.values())
        if self._last_ok and not stuck:
            return "I reach the store"
        return ""

    def promised_for_s(self) -> float:
        """How long the current promise still binds (0: none)."""
        with self._lock:
            return max(0.0, self._promise_until - self.clock())

    def since_promise_s(self) -> float:
        """Seconds since the last yes (or since this controller started)."""
        with self._lock:
            return self.clock() - (self._promise_until - self.promise_s)

    def reaches_store(self) -> bool:
        with self._lock:
            return self._last_ok

    # ---- the store interface, every call recorded ----

    def _call(self, fn: Callable[[], T], guarded_write: bool = False, read: bool = False) -> T:
        with self._lock:
            started = self.clock()
            if guarded_write:
                if started < self._promise_until:
                    raise StoreError(
                        f"failsafe: promised no binding write for {self._promise_until - started:.2f} s more"
                    )
                self._writes += 1
            self._calls += 1
            call = self._calls
            self._outstanding[call] = started
        ok = False
        try:
            result = fn()
            ok = True
            return result
        finally:
            with self._lock:
                del self._outstanding[call]
                self._last_ok = ok
                if guarded_write:
                    self._writes -= 1
                    if not ok:
                        self._unknown_after = self._calls
                # A linearizable read that started after the failure decides every earlier write.
                if ok and read and self._unknown_after is not None and call > self._unknown_after:
                    self._unknown_after = None

    def get(self, key: str) -> KeyValue | None:
        return self._call(lambda: self.inner.get(key), read=True)

    def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        return self._call(lambda: self.inner.get_prefix(prefix), read=True)

    def get_prefixes(self, prefixes: Sequence[str]) -> tuple[list[list[KeyValue]], int]:
        return self._call(lambda: self.inner.get_prefixes(prefixes), read=True)

    def txn(self, compares: list[Compare], success: list[Op], failure: list[Op] | None = None) -> bool:
        guarded = any(self.is_guarded(op.key) for op in [*success, *(failure or [])])
        return self._call(lambda: self.inner.txn(compares, success, failure), guarded_write=guarded)

    def grant(self, ttl_s: int) -> int:
        return self._call(lambda: self.inner.grant(ttl_s))

    def keepalive(self, lease: int) -> int:
        return self._call(lambda: self.inner.keepalive(lease))

    def revoke(self, lease: int) -> None:
        self._call(lambda: self.inner.revoke(lease))

    def wait(self, prefix: str, after_revision: int, timeout_s: float) -> bool:
        # Not recorded: a watch that sees no event says nothing about whether the store answers.
        return self.inner.wait(prefix, after_revision, timeout_s)
