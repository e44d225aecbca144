"""The controller's observe step: read the store once per tick into plain values, then build the Snapshot
that `decide` takes. Reading is I/O (`read`); everything after it is pure and tested with plain values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from hastack.backends.lab import net_prefix
from hastack.controller.decide import Node, Policy, Snapshot, failure_reason
from hastack.store import Store, keys


@dataclass(frozen=True)
class Observed:
    """What the store said at one moment (times are the store's wall-clock heartbeats)."""

    node_keys: frozenset[str]  # hosts whose node key (lease) exists
    heartbeats: Mapping[str, float]  # host -> time of the L3 agent's last report
    admin_up: Mapping[str, bool]
    bindings: Mapping[str, str]  # router -> host
    control: Mapping[str, str]  # paused, policy, drained/<host>...
    revision: int


def read(store: Store, deployment: str) -> Observed:
    nodes, _ = store.get_prefix(keys.nodes_prefix(deployment))
    agents, _ = store.get_prefix(net_prefix(deployment) + "agents/")
    bindings, _ = store.get_prefix(net_prefix(deployment) + "bindings/")
    control, revision = store.get_prefix(keys.control_prefix(deployment))
    reports = {kv.key.rsplit("/", 1)[1]: json.loads(kv.value) for kv in agents}
    return Observed(
        frozenset(kv.key.rsplit("/", 1)[1] for kv in nodes),
        {h: float(r["heartbeat"]) for h, r in reports.items()},
        {h: bool(r.get("admin_up", True)) for h, r in reports.items()},
        {kv.key.rsplit("/", 1)[1]: kv.value for kv in bindings},
        {kv.key.removeprefix(keys.control_prefix(deployment)): kv.value for kv in control},
        revision,
    )


def policy_name(o: Observed) -> str:
    return o.control.get("policy", "hastack")


def drained(o: Observed) -> list[str]:
    return sorted(k.removeprefix("drained/") for k in o.control if k.startswith("drained/"))


def nodes(
    o: Observed, hosts: tuple[str, ...], now: float, healthy_since: Mapping[str, float]
) -> tuple[Node, ...]:
    """One Node per network node of the inventory. Pure."""
    return tuple(
        Node(
            host,
            host in o.node_keys,
            now - o.heartbeats[host] if host in o.heartbeats else float("inf"),
            o.admin_up.get(host, True),
            now - healthy_since[host] if host in healthy_since else 0.0,
        )
        for host in hosts
    )


def track_health(
    previous: Mapping[str, float], current: tuple[Node, ...], policy: Policy, now: float
) -> dict[str, float]:
    """Since when each node has been continuously healthy (a failed node drops out). Pure."""
    return {n.host: previous.get(n.host, now) for n in current if failure_reason(n, policy) is None}


def snapshot(
    o: Observed,
    hosts: tuple[str, ...],
    now: float,
    healthy_since: Mapping[str, float],
    is_leader: bool,
    leader_for_s: float,
    routers: tuple[str, ...],
) -> Snapshot:
    hosting: dict[str, list[str]] = {h: [] for h in hosts}
    for router, host in sorted(o.bindings.items()):
        hosting.setdefault(host, []).append(router)
    return Snapshot(
        is_leader,
        leader_for_s,
        o.control.get("paused") == "true",
        nodes(o, hosts, now, healthy_since),
        {h: tuple(r) for h, r in hosting.items()},
        tuple(r for r in routers if r not in o.bindings),
    )
