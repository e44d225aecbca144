"""Leader election on the Store: a leader key bound to the leader's own lease, taken by compare-and-set.

The key's value is `<name>:<lease id>`: unique to one term of one candidate, so it doubles as the fencing
token. Every write the leader makes is a transaction that also compares the key to its token
(`fence()`); a leader whose lease lapsed cannot write, even if it has not noticed yet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hastack.store import Put, Store, StoreError, ValueIs


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
        self.current = ""  # the leader key's value as last read (the leading term's token); "" if none

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
            self.leader_since, self.current = self.clock(), self.token
            return True
        current = self.store.get(self.key)
        self.current = current.value if current is not None else ""
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

    def take_over(self, term: str) -> bool:
        """Take the key from the leader of `term`, which a majority of controllers has heard nothing from
        (grants/beats.py): one transaction conditioned on the key still holding that term's token, so
        two controllers that both try cannot both win, and every write of the deposed term fails from
        its commit on, as after its lease ran out. Whether this controller leads now."""
        if not self.lease or not term or term == self.token:
            return False
        if not self.store.txn([ValueIs(self.key, term)], [Put(self.key, self.token, lease=self.lease)]):
            return False
        self.leader_since, self.current = self.clock(), self.token
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
