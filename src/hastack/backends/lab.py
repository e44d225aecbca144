"""The lab's network service: Neutron's L3 scheduling semantics with its state in the lab's etcd.

Keys, under /hastack/<deployment>/net/:
  agents/<host>     {"host", "admin_up", "heartbeat"}: written by the lab L3 agent every report interval
  routers/<id>      the router's definition (see `lab.network`), written by `lab up`
  bindings/<id>     the host whose agent hosts the router
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from hastack.backends.base import Agent, BackendError, NetworkBackend
from hastack.store import Absent, Compare, Delete, Put, Store, StoreError, ValueIs

MOVE_BATCH = 100  # routers per transaction: etcd allows 128 operations in one (--max-txn-ops)


def net_prefix(deployment: str) -> str:
    return f"/hastack/{deployment}/net/"


class LabNetworkBackend(NetworkBackend):
    def __init__(
        self, store: Store, deployment: str, clock: Callable[[], float], agent_down_s: float
    ) -> None:
        self.store = store
        self.prefix = net_prefix(deployment)
        self.clock = clock
        self.agent_down_s = agent_down_s

    def _read(self, sub: str) -> dict[str, str]:
        try:
            kvs, _rev = self.store.get_prefix(self.prefix + sub)
        except StoreError as e:
            raise BackendError(f"lab network service: {e}") from e
        return {kv.key.rsplit("/", 1)[1]: kv.value for kv in kvs}

    def _get(self, sub: str) -> str | None:
        try:
            kv = self.store.get(self.prefix + sub)
        except StoreError as e:
            raise BackendError(f"lab network service: {e}") from e
        return None if kv is None else kv.value

    def list_agents(self) -> list[Agent]:
        now = self.clock()
        agents = []
        for host, raw in self._read("agents/").items():
            data = json.loads(raw)
            agents.append(
                Agent(host, now - float(data["heartbeat"]) <= self.agent_down_s, bool(data["admin_up"]))
            )
        return agents

    def routers(self) -> list[str]:
        return sorted(self._read("routers/"))

    def bindings(self) -> dict[str, str]:
        return self._read("bindings/")

    def routers_by_agent(self) -> dict[str, list[str]]:
        hosted: dict[str, list[str]] = {a.host: [] for a in self.list_agents()}
        for router, host in sorted(self.bindings().items()):
            hosted.setdefault(host, []).append(router)
        return hosted

    def remove_router(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        key = f"{self.prefix}bindings/{router}"
        if not self._txn([ValueIs(key, host), *only_if], [Delete(key)]):
            raise self._refusal(router, host)

    def add_router(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        if host not in {a.host for a in self.list_agents()}:
            raise BackendError(f"no L3 agent on {host}")
        if self._get(f"routers/{router}") is None:  # one key, not every definition: moves come in bulk
            raise BackendError(f"no router {router}")
        key = f"{self.prefix}bindings/{router}"
        if not self._txn([Absent(key), *only_if], [Put(key, host)]):
            current = self._get(f"bindings/{router}")
            if current is None:
                raise BackendError(f"router {router} not added to {host}: a condition of the move failed")
            raise BackendError(f"router {router} is already hosted by {current}")

    def move_router(self, router: str, source: str, target: str, only_if: Sequence[Compare] = ()) -> None:
        """One transaction: the binding goes from `source` to `target` or stays where it is."""
        if target not in {a.host for a in self.list_agents()}:
            raise BackendError(f"no L3 agent on {target}")
        key = f"{self.prefix}bindings/{router}"
        if not self._txn([ValueIs(key, source), *only_if], [Put(key, target)]):
            raise self._refusal(router, source)

    def move_routers(
        self, routers: Sequence[str], source: str, target: str, only_if: Sequence[Compare] = ()
    ) -> dict[str, str | None]:
        """MOVE_BATCH routers per transaction, all or none; a batch whose conditions fail is done one by
        one, so each router gets its own answer (moved, elsewhere, or a condition failed)."""
        if target not in {a.host for a in self.list_agents()}:
            return dict.fromkeys(routers, f"no L3 agent on {target}")
        done: dict[str, str | None] = {}
        for i in range(0, len(routers), MOVE_BATCH):
            batch = routers[i : i + MOVE_BATCH]
            keys = [f"{self.prefix}bindings/{r}" for r in batch]
            compares: list[Compare] = [*(ValueIs(k, source) for k in keys), *only_if]
            if self._txn(compares, [Put(k, target) for k in keys]):
                done.update(dict.fromkeys(batch, None))
            else:
                done.update(super().move_routers(batch, source, target, only_if))
        return done

    def _refusal(self, router: str, source: str) -> BackendError:
        """Why a change away from `source` did not happen: the router is elsewhere, or a condition failed."""
        if self._get(f"bindings/{router}") == source:
            return BackendError(f"router {router} stays on {source}: a condition of the move failed")
        return BackendError(f"router {router} is not hosted by {source}")

    def _txn(self, compares: list[Compare], ops: list[Put | Delete]) -> bool:
        try:
            return self.store.txn(list(compares), list(ops))
        except StoreError as e:
            raise BackendError(f"lab network service: {e}") from e

    # What the lab L3 agent and `lab up` write.
    def report(self, host: str, admin_up: bool = True) -> None:
        value = json.dumps({"host": host, "admin_up": admin_up, "heartbeat": self.clock()})
        self._txn([], [Put(f"{self.prefix}agents/{host}", value)])

    def define_router(self, router: str, definition: str, host: str | None = None) -> None:
        """Define the router; with `host`, bound there in the same transaction (else the controller may
        place it first: it places every router it finds unbound)."""
        ops: list[Put | Delete] = [Put(f"{self.prefix}routers/{router}", definition)]
        if host is not None:
            ops.append(Put(f"{self.prefix}bindings/{router}", host))
        self._txn([], ops)

    def forget_router(self, router: str) -> None:
        """The router's binding and definition go, in one transaction (what `bench scale` added)."""
        self._txn([], [Delete(f"{self.prefix}bindings/{router}"), Delete(f"{self.prefix}routers/{router}")])

    def definition(self, router: str) -> str:
        value = self._get(f"routers/{router}")
        if value is None:
            raise BackendError(f"no router {router}")
        return value
