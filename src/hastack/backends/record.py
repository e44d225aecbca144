"""The record of which node serves each router, in the store: the lab's network service keeps its bindings
here, and the Neutron backend keeps hastack's own (Neutron follows it). Each change is one transaction
with the move's conditions (fencing token, "the failed node's lease is gone"), so the node agents' gates,
which follow this record, never see a move whose conditions failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from hastack.backends.base import BackendError
from hastack.store import Absent, Compare, Delete, KeyValue, Put, Store, StoreError, ValueIs

MOVE_BATCH = 100  # routers per transaction: etcd allows 128 operations in one (--max-txn-ops)


def parse(kvs: Sequence[KeyValue]) -> dict[str, str]:
    """router -> host, from the keys read under a record's prefix (a router's key ends in its id)."""
    return {kv.key.rsplit("/", 1)[1]: kv.value for kv in kvs}


class BindingRecord:
    """router -> host under `prefix`; store failures become BackendError("`name`: ...")."""

    def __init__(self, store: Store, prefix: str, name: str) -> None:
        self.store, self.prefix, self.name = store, prefix, name

    def key(self, router: str) -> str:
        return self.prefix + router

    def all(self) -> dict[str, str]:
        try:
            kvs, _rev = self.store.get_prefix(self.prefix)
        except StoreError as e:
            raise BackendError(f"{self.name}: {e}") from e
        return parse(kvs)

    def get(self, router: str) -> str | None:
        try:
            kv = self.store.get(self.key(router))
        except StoreError as e:
            raise BackendError(f"{self.name}: {e}") from e
        return None if kv is None else kv.value

    def txn(self, compares: list[Compare], ops: list[Put | Delete]) -> bool:
        try:
            return self.store.txn(compares, ops)
        except StoreError as e:
            raise BackendError(f"{self.name}: {e}") from e

    def refusal(self, router: str, source: str) -> BackendError:
        """Why a change away from `source` did not happen: the router is elsewhere, or a condition failed."""
        if self.get(router) == source:
            return BackendError(f"router {router} stays on {source}: a condition of the move failed")
        return BackendError(f"router {router} is not hosted by {source}")

    def remove(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        if not self.txn([ValueIs(self.key(router), host), *only_if], [Delete(self.key(router))]):
            raise self.refusal(router, host)

    def add(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        if not self.txn([Absent(self.key(router)), *only_if], [Put(self.key(router), host)]):
            current = self.get(router)
            if current is None:
                raise BackendError(f"router {router} not added to {host}: a condition of the move failed")
            raise BackendError(f"router {router} is already hosted by {current}")

    def move(
        self, routers: Sequence[str], source: str, target: str, only_if: Sequence[Compare] = ()
    ) -> dict[str, str | None]:
        """MOVE_BATCH routers per transaction, all or none; a batch whose conditions fail is done one by
        one, so each router gets its own answer: None (moved), or why not."""
        done: dict[str, str | None] = {}
        for i in range(0, len(routers), MOVE_BATCH):
            batch = routers[i : i + MOVE_BATCH]
            keys = [self.key(r) for r in batch]
            compares: list[Compare] = [*(ValueIs(k, source) for k in keys), *only_if]
            if self.txn(compares, [Put(k, target) for k in keys]):
                done.update(dict.fromkeys(batch, None))
                continue
            for router, key in zip(batch, keys, strict=True):
                moved = self.txn([ValueIs(key, source), *only_if], [Put(key, target)])
                done[router] = None if moved else str(self.refusal(router, source))
        return done
