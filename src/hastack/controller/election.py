"""Leader election on the Store: a leader key bound to the leader's own lease, taken by compare-and-set.

The key's value is `<name>:<lease id>`: unique to one term of one candidate, so it doubles as the fencing
token. Every write the leader makes is a transaction that also compares the key to its token
(`fence()`); a leader whose lease lapsed cannot write, even if it has not noticed yet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hastack.store import Store, StoreError, ValueIs


class Election:
    def __init__(self, store: Store, key: str, name: str, ttl_s: int, clock: Callable[[], float]) -> None:
        self.store = store
        self.key = key
        self.name = name
        self.ttl_s = ttl_s
        self.clock = clock
        self.lease = 0
        self.leader_since: float | None = None
        self.lost = ""  # why this candidate last stopped leading

    @property
    def token(self) -> str:
        return f"{self.name}:{self.lease}"

    def step(self) -> bool:
        """Renew our lease (or get one) and try to take the key; whether we lead now. StoreError passes
        through: a candidate that cannot reach the store must assume it does not lead."""
        if self.lease and self.store.keepalive(self.lease) < 0:
            if self.leader_since is not None:
                self.lost = f"lease {self.lease:x} expired after {self.leader_for_s():.1f} s of leadership"
            self.lease, self.leader_since = 0, None
        if not self.lease:
            self.lease = self.store.grant(self.ttl_s)
        if self.store.create(self.key, self.token, lease=self.lease):
            self.leader_since = self.clock()
            return True
        current = self.store.get(self.key)
        if current is None or current.value != self.token:
            if self.leader_since is not None:
                self.lost = f"the leader key went to {current.value if current else 'nobody'}"
            self.leader_since = None
            return False
        if self.leader_since is None:
            # Our create committed though its answer was lost (a timeout, then a retry on another member
            # found the key taken: by us). We lead; count the term from now, the latest it can have begun.
            self.leader_since = self.clock()
        return True

    def leader_for_s(self) -> float:
        return 0.0 if self.leader_since is None else self.clock() - self.leader_since

    def fence(self) -> ValueIs:
        """The compare to add to every leader write: it fails once another term holds the key."""
        return ValueIs(self.key, self.token)

    def resign(self) -> None:
        """Give up the lead at once if the store answers; if not, the lease runs out by itself."""
        if self.lease:
            with contextlib.suppress(StoreError):
                self.store.revoke(self.lease)
        self.lease, self.leader_since = 0, None
