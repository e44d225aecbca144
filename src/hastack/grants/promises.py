"""A controller's promises in the store: the key each one is written to, its end, and the clean-up at start.

A promise not to grant a node is written as the key `promises/HOST/CONTROLLER` holding the promise's id; the
leader conditions a move away from that node on each key it was told of still holding its id. A promise
ends by deleting the key if it still holds that id (a later promise's key stays) and then reading the
bindings: the granter resumes with that read's revision, which is past the move if the move committed, and
no move can commit after the delete (DESIGN-fencing.md). Deleting is always safe: it can only make a move
fail. Every call may raise StoreError; the caller retries.

Each run of a controller writes its own id to `promisers/CONTROLLER` as it starts, before it deletes the
keys its earlier runs left, and every promise write is conditioned on that id: a promise the
earlier run was still writing cannot land after the clean-up (the simulation in tests/unit/test_grants.py
found that window: the key landed, the leader moved on it, the new run granted with an older revision).
"""

from __future__ import annotations

import logging
import secrets
import threading

from hastack.grants.granter import Granter
from hastack.store import Delete, Put, Store, StoreError, ValueIs, keys

log = logging.getLogger("hastack.grants")


class PromiseKeys:
    def __init__(self, store: Store, deployment: str, name: str, granter: Granter, hold_s: float) -> None:
        """`hold_s`: how long a promise is kept before it is ended, time enough for the leader to move."""
        self.store, self.deployment, self.name, self.granter = store, deployment, name, granter
        self.hold_s = hold_s
        self.run = secrets.token_hex(8)
        self.run_key = keys.promiser_key(deployment, name)

    def key(self, host: str) -> str:
        return keys.promise_key(self.deployment, host, self.name)

    def start(self) -> int:
        """Fence the earlier runs of this controller (its run's id first: no write of theirs lands after
        it), delete the promise keys they left, then read the bindings and let the granter grant from that
        revision on; how many keys were left."""
        self.store.txn([], [Put(self.run_key, self.run)])
        (promises,), _rev = self.store.get_prefixes([keys.promises_prefix(self.deployment)])
        mine = [kv for kv in promises if kv.key.rsplit("/", 1)[1] == self.name]
        if mine:
            self.store.txn([], [Delete(kv.key) for kv in mine])
        (_bindings,), rev = self.store.get_prefixes([keys.bindings_prefix(self.deployment)])
        self.granter.start(rev)
        return len(mine)

    def write(self, host: str, promise: str) -> None:
        """Write the promise's key; committed when this returns (granting stopped before: begin_promise)."""
        if not self.store.txn([ValueIs(self.run_key, self.run)], [Put(self.key(host), promise)]):
            raise StoreError(f"{self.run_key} is another run's: this one may promise nothing")

    def end_due(self) -> int:
        """End every promise held `hold_s` or longer; how many ended."""
        ended = 0
        for host, promise in self.granter.promises_older_than(self.hold_s):
            self.store.txn([ValueIs(self.key(host), promise)], [Delete(self.key(host))])
            (_bindings,), rev = self.store.get_prefixes([keys.bindings_prefix(self.deployment)])
            self.granter.end_promise(host, promise, rev)
            ended += 1
        return ended


def keep(promises: PromiseKeys, interval_s: float, stop: threading.Event) -> None:
    """A controller's keeper thread: start the granter once the clean-up read succeeds, then end every
    promise that is due, every `interval_s`. A store that does not answer delays both, which is safe:
    no grant before the start, no grant to a promised node before its promise ends."""
    started = False
    while not stop.is_set():
        try:
            if not started:
                left = promises.start()
                started = True
                log.info("granting from now on (%d promise key(s) of an earlier run deleted)", left)
            promises.end_due()
        except StoreError as e:
            log.debug("promise keys: %s", e)
        except Exception:  # dying silently, it would leave a promised node without this one's grants
            log.exception("promise keeper: going on")
        stop.wait(interval_s)
