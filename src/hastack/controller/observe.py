"""The controller's observe step: read the store once per tick into plain values, then build the Snapshot
that `decide` takes. Reading is I/O (`read`); everything after it is pure and tested with plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hastack.backends.lab import parse_report
from hastack.controller.decide import POLICIES, Node, Policy, Snapshot, failure_reason
from hastack.store import KeyValue, Store, keys


@dataclass(frozen=True)
class Observed:
    """What the store said at one moment (times are the store's wall-clock heartbeats)."""

    node_keys: frozenset[str]  # hosts whose node key (lease) exists
    heartbeats: Mapping[str, float]  # host -> time of the L3 agent's last report
    admin_up: Mapping[str, bool]
    bindings: Mapping[str, str]  # router -> host
    control: Mapping[str, str]  # paused, policy, drained/<host>...
    revision: int
    malformed: tuple[str, ...] = ()  # keys whose value could not be read (left out, said in the tick)


def read(store: Store, deployment: str) -> Observed:
    """One read of everything the controller decides on, at one revision."""
    (nodes, agents, bindings, control), revision = store.get_prefixes(
        [
            keys.nodes_prefix(deployment),
            keys.agents_prefix(deployment),
            keys.bindings_prefix(deployment),
            keys.control_prefix(deployment),
        ]
    )
    reports, bad_reports = parse_reports(agents)
    settings, bad_settings = parse_control(control, keys.control_prefix(deployment))
    return Observed(
        frozenset(kv.key.rsplit("/", 1)[1] for kv in nodes),
        {h: r[0] for h, r in reports.items()},
        {h: r[1] for h, r in reports.items()},
        {kv.key.rsplit("/", 1)[1]: kv.value for kv in bindings},
        settings,
        revision,
        bad_reports + bad_settings,
    )


def parse_reports(kvs: list[KeyValue]) -> tuple[dict[str, tuple[float, bool]], tuple[str, ...]]:
    """host -> (heartbeat, admin_up) from the L3 agents' reports, and the keys that are not a report. A
    value someone wrote by hand must not stop the control loop: it counts as no report. Pure."""
    reports, malformed = {}, []
    for kv in kvs:
        report = parse_report(kv.value)
        if report is None:
            malformed.append(kv.key)
        else:
            reports[kv.key.rsplit("/", 1)[1]] = report
    return reports, tuple(malformed)


# The operator's settings and the one value each may hold (a drained host's key may hold anything).
CONTROL_VALUES = {"policy": POLICIES, "paused": ("true",), "failsafe": ("off",)}


def parse_control(kvs: list[KeyValue], prefix: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """The operator's settings under `prefix`, and the keys whose value is not one the API writes: those
    count as unset (the default: policy hastack, not paused, failsafe on), and the tick says so. Pure."""
    control, malformed = {}, []
    for kv in kvs:
        name = kv.key.removeprefix(prefix)
        if name in CONTROL_VALUES and kv.value not in CONTROL_VALUES[name]:
            malformed.append(kv.key)
            continue
        control[name] = kv.value
    return control, tuple(malformed)


def policy_name(o: Observed) -> str:
    return o.control.get("policy", "hastack")


def drained(o: Observed) -> list[str]:
    return sorted(k.removeprefix("drained/") for k in o.control if k.startswith("drained/"))


def nodes(
    o: Observed,
    hosts: tuple[str, ...],
    now: float,
    healthy_since: Mapping[str, float],
    mono: float = 0.0,
    bounded: frozenset[str] | None = None,
    silent: Mapping[str, float] | None = None,
) -> tuple[Node, ...]:
    """One Node per network node of the inventory. `now` is wall-clock time (the L3 agents' heartbeats
    are), `mono` the monotonic time `healthy_since` counts in; `bounded`: the nodes whose gates are known
    to run out (None: all); `silent`: host -> seconds since its last grant round (grants on). Pure."""
    return tuple(
        Node(
            host,
            host in o.node_keys,
            now - o.heartbeats[host] if host in o.heartbeats else float("inf"),
            o.admin_up.get(host, True),
            mono - healthy_since[host] if host in healthy_since else 0.0,
            bounded is None or host in bounded,
            (silent or {}).get(host, 0.0),
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
    mono: float = 0.0,
    bounded: frozenset[str] | None = None,
    settled_for_s: float = float("inf"),
    silent: Mapping[str, float] | None = None,
) -> Snapshot:
    hosting: dict[str, list[str]] = {h: [] for h in hosts}
    for router, host in sorted(o.bindings.items()):
        hosting.setdefault(host, []).append(router)
    return Snapshot(
        is_leader,
        leader_for_s,
        o.control.get("paused") == "true",
        nodes(o, hosts, now, healthy_since, mono, bounded, silent),
        {h: tuple(r) for h, r in hosting.items()},
        tuple(r for r in routers if r not in o.bindings),
        settled_for_s,
    )
