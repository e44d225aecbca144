"""An in-memory Store for unit tests: the same contract, a clock of the test's choosing for leases."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hastack.store.base import Absent, Compare, Delete, KeyValue, Op, Store, StoreError


@dataclass
class _Lease:
    ttl_s: int
    expires_at: float


class MemoryStore(Store):
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._data: dict[str, KeyValue] = {}
        self._leases: dict[int, _Lease] = {}
        self._revision = 1
        self._next_lease = 1
        self._changed = threading.Condition()
        self._events: list[tuple[int, str]] = []  # (revision, key) of every change, for wait()
        self.reachable = True  # a test may cut the store off

    def _check(self) -> None:
        if not self.reachable:
            raise StoreError("memory store: unreachable (cut off by the test)")
        now = self._clock()
        for lease_id in [lid for lid, lease in self._leases.items() if lease.expires_at <= now]:
            self._drop_lease(lease_id)

    def _drop_lease(self, lease_id: int) -> None:
        self._leases.pop(lease_id, None)
        doomed = [k for k, kv in self._data.items() if kv.lease == lease_id]
        if doomed:
            self._revision += 1
            for key in doomed:
                del self._data[key]
                self._events.append((self._revision, key))
            self._changed.notify_all()

    def get(self, key: str) -> KeyValue | None:
        with self._changed:
            self._check()
            return self._data.get(key)

    def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        (found,), revision = self.get_prefixes([prefix])
        return found, revision

    def get_prefixes(self, prefixes: Sequence[str]) -> tuple[list[list[KeyValue]], int]:
        with self._changed:
            self._check()
            found = [
                sorted((kv for k, kv in self._data.items() if k.startswith(p)), key=lambda kv: kv.key)
                for p in prefixes
            ]
            return found, self._revision

    def _holds(self, c: Compare) -> bool:
        kv = self._data.get(c.key)
        if isinstance(c, Absent):
            return kv is None
        return kv is not None and kv.value == c.value

    def txn(self, compares: list[Compare], success: list[Op], failure: list[Op] | None = None) -> bool:
        with self._changed:
            self._check()
            ok = all(self._holds(c) for c in compares)
            ops = success if ok else (failure or [])
            if ops:
                self._revision += 1
                for op in ops:
                    self._apply(op)
                self._changed.notify_all()
            return ok

    def _apply(self, op: Op) -> None:
        self._events.append((self._revision, op.key))
        del self._events[:-10_000]
        if isinstance(op, Delete):
            self._data.pop(op.key, None)
            return
        if op.lease and op.lease not in self._leases:
            raise StoreError(f"memory store: lease {op.lease} not found")
        self._data[op.key] = KeyValue(op.key, op.value, self._revision, op.lease)

    def grant(self, ttl_s: int) -> int:
        with self._changed:
            self._check()
            lease_id, self._next_lease = self._next_lease, self._next_lease + 1
            self._leases[lease_id] = _Lease(ttl_s, self._clock() + ttl_s)
            return lease_id

    def keepalive(self, lease: int) -> int:
        with self._changed:
            self._check()
            found = self._leases.get(lease)
            if found is None:
                return -1
            found.expires_at = self._clock() + found.ttl_s
            return found.ttl_s

    def revoke(self, lease: int) -> None:
        with self._changed:
            self._check()
            self._drop_lease(lease)

    def wait(self, prefix: str, after_revision: int, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: any(rev > after_revision and key.startswith(prefix) for rev, key in self._events),
                timeout=timeout_s,
            )
