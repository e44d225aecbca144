"""The lab's network service: Neutron's L3 scheduling semantics with its state in the lab's etcd.

Keys, under /hastack/<deployment>/net/:
  agents/<host>     {"host", "admin_up", "heartbeat"}: written by the lab L3 agent every report interval
  routers/<id>      the router's definition (see `lab.topology`), written by `lab up`
  bindings/<id>     the host whose agent hosts the router
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence

from hastack.backends.base import Agent, BackendError, RecordMoves
from hastack.backends.record import BindingRecord
from hastack.store import Compare, Delete, Put, Store, StoreError, keys


def agent_report(deployment: str, host: str, admin_up: bool, heartbeat: float) -> Put:
    """An L3 agent's report, where the controller reads heartbeats (controller/observe.py)."""
    value = json.dumps({"host": host, "admin_up": admin_up, "heartbeat": heartbeat})
    return Put(keys.agent_key(deployment, host), value)


def parse_report(raw: str) -> tuple[float, bool] | None:
    """(heartbeat, admin_up) from an L3 agent's report in the store; None if `raw` is not one (written by
    hand, or damaged): a value someone wrote must not stop the control loop. Pure."""
    try:
        data = json.loads(raw)
        heartbeat = float(data["heartbeat"])
        admin_up = bool(data.get("admin_up", True))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    # An infinite heartbeat would keep a dead agent alive forever.
    return (heartbeat, admin_up) if math.isfinite(heartbeat) else None


class LabNetworkBackend(RecordMoves):
    moves_fenced = True  # its bindings live in the store: every move is one conditioned transaction

    def __init__(
        self, store: Store, deployment: str, clock: Callable[[], float], agent_down_s: float
    ) -> None:
        self.store, self.deployment = store, deployment
        self.clock = clock
        self.agent_down_s = agent_down_s
        self.record = BindingRecord(store, keys.bindings_prefix(deployment), "lab network service")

    def _read(self, prefix: str) -> dict[str, str]:
        try:
            kvs, _rev = self.store.get_prefix(prefix)
        except StoreError as e:
            raise BackendError(f"lab network service: {e}") from e
        return {kv.key.rsplit("/", 1)[1]: kv.value for kv in kvs}

    def _get(self, key: str) -> str | None:
        try:
            kv = self.store.get(key)
        except StoreError as e:
            raise BackendError(f"lab network service: {e}") from e
        return None if kv is None else kv.value

    def list_agents(self) -> list[Agent]:
        now = self.clock()
        agents = []
        for host, raw in self._read(keys.agents_prefix(self.deployment)).items():
            report = parse_report(raw)
            if report is not None:  # a value that is not a report counts as no report: the agent is absent
                agents.append(Agent(host, now - report[0] <= self.agent_down_s, report[1]))
        return agents

    def routers(self) -> list[str]:
        return sorted(self._read(keys.routers_prefix(self.deployment)))

    def bindings(self) -> dict[str, str]:
        return self.record.all()

    def routers_by_agent(self) -> dict[str, list[str]]:
        hosted: dict[str, list[str]] = {a.host: [] for a in self.list_agents()}
        for router, host in sorted(self.bindings().items()):
            hosted.setdefault(host, []).append(router)
        return hosted

    def remove_router(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        self.record.remove(router, host, only_if)

    def add_router(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        if host not in {a.host for a in self.list_agents()}:
            raise BackendError(f"no L3 agent on {host}")
        if (
            self._get(keys.router_key(self.deployment, router)) is None
        ):  # one key, not every definition: moves come in bulk
            raise BackendError(f"no router {router}")
        self.record.add(router, host, only_if)

    def move_routers(
        self, routers: Sequence[str], source: str, target: str, only_if: Sequence[Compare] = ()
    ) -> dict[str, str | None]:
        """MOVE_BATCH routers per transaction (record.py), each router with its own answer."""
        if target not in {a.host for a in self.list_agents()}:
            return dict.fromkeys(routers, f"no L3 agent on {target}")
        return self.record.move(routers, source, target, only_if)

    def _txn(self, compares: list[Compare], ops: list[Put | Delete]) -> bool:
        return self.record.txn(compares, ops)

    # What the lab L3 agent and `lab up` write.
    def report(self, host: str, admin_up: bool = True) -> None:
        self._txn([], [agent_report(self.deployment, host, admin_up, self.clock())])

    def define_router(self, router: str, definition: str, host: str | None = None) -> None:
        """Define the router; with `host`, bound there in the same transaction (else the controller may
        place it first: it places every router it finds unbound)."""
        ops: list[Put | Delete] = [Put(keys.router_key(self.deployment, router), definition)]
        if host is not None:
            ops.append(Put(keys.binding_key(self.deployment, router), host))
        self._txn([], ops)

    def forget_router(self, router: str) -> None:
        """The router's binding and definition go, in one transaction (what `bench scale` added)."""
        self._txn(
            [],
            [
                Delete(keys.binding_key(self.deployment, router)),
                Delete(keys.router_key(self.deployment, router)),
            ],
        )

    def definition(self, router: str) -> str:
        value = self._get(keys.router_key(self.deployment, router))
        if value is None:
            raise BackendError(f"no router {router}")
        return value
