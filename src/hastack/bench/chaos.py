"""The fault campaign's schedule: seeded, reproducible, overlapping faults drawn from what the lab can do,
each judged by the failure analysis as tolerated or beyond. Pure: the runner is `bench/campaign.py`.

An action is one fault as an operator would name it ("cut net1", "etcd cut off from net1"): the lab faults
injected together, the hosts it touches and the failure the analysis sees. Actions that overlap in time
touch disjoint hosts, so that healing one (`lab heal HOST`) never ends another early.

An operator's request is an action too (`hastack ctl move`, `rebalance`, `drain`, `policy`), sent while
other faults hold: a drain is undone (`enable`) and a policy switched back to `hastack` at its heal. Moves
and policy switches touch every network node, so that no fault of a network node overlaps them: the
anchor policies (`paper`, `neutron`) do not fence by design, and a node failing under one would measure
that known flaw (`bench l3 --policy paper` does), not hastack's.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hastack.analysis.impact import Failure, evaluate
from hastack.bench.experiment import GOALS_S
from hastack.model import Deployment
from hastack.model.endpoints import grant_timing

UNSEEN_GOAL_S = GOALS_S["etcd-quorum"]


@dataclass(frozen=True)
class Goals:
    """What a fault may cost the data plane when the analysis tolerates it (the goals of `bench l3`): a
    fault that makes routers move gets the failover goal, the controller leader's the time a standby
    takes to lead on top, and every other fault must not show on the data plane at all. `settle_s`: how
    long the campaign waits after its last heal before it judges (a failover then may still be going)."""

    # The campaign's own goals: a network fault 1.5 s, a controller's 2.5 s, whatever overlaps it (the
    # single-fault goals of `bench l3` are tighter).
    moves_routers_s: float = 1.5
    controller_s: float = 2.5
    settle_s: float = 10.0


# Per lab profile. Under `openstack` real Neutron's L3 agent builds a moved router from scratch: 15-37 s
# measured by `bench l3 --profile openstack` (docs/benchmarks.md); the goal is that, rounded up.
GOALS = {"lab": Goals(), "openstack": Goals(moves_routers_s=40.0, controller_s=40.0, settle_s=60.0)}
LOSS_PCT = 20.0  # of a `loss HOST` action's packets on the host's management link
# Services whose loss on a network node moves its routers.
NETWORK_NODE_SERVICES = ("l3-agent", "hastack-agent")


@dataclass(frozen=True)
class Action:
    """One fault of the campaign: the `lab fail` faults it injects at once, and what it breaks."""

    label: str
    faults: tuple[tuple[str, str], ...]  # (kind, target) as `hastack lab fail KIND TARGET` takes them
    hosts: frozenset[str]  # every host it touches
    failed_hosts: frozenset[str] = frozenset()  # for the analysis: hosts it takes away
    failed_instances: frozenset[tuple[str, str]] = frozenset()  # ... and (component, host) instances
    goal_s: float | None = UNSEEN_GOAL_S  # None: not judged (packet loss)
    ctl: tuple[str, ...] = ()  # an operator's request at the start: `hastack ctl` arguments
    undo: tuple[str, ...] = ()  # ... and at the heal

    @property
    def kind(self) -> str:
        """The label without its target: what figures are grouped by."""
        return self.label.split(" ", 1)[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "faults": [list(f) for f in self.faults],
            "hosts": sorted(self.hosts),
            "failed_hosts": sorted(self.failed_hosts),
            "failed_instances": [list(i) for i in sorted(self.failed_instances)],
            "goal_s": self.goal_s,
            "ctl": list(self.ctl),
            "undo": list(self.undo),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Action:
        return cls(
            str(d["label"]),
            tuple((str(k), str(t)) for k, t in d["faults"]),
            frozenset(map(str, d["hosts"])),
            frozenset(map(str, d["failed_hosts"])),
            frozenset((str(c), str(h)) for c, h in d["failed_instances"]),
            None if d["goal_s"] is None else float(d["goal_s"]),
            tuple(map(str, d.get("ctl", ()))),
            tuple(map(str, d.get("undo", ()))),
        )


@dataclass(frozen=True)
class Planned:
    """An action at its place in the campaign: started `start_s` after the campaign began, held `hold_s`."""

    index: int
    start_s: float
    hold_s: float
    action: Action
    tolerated: bool  # by the analysis, together with every action still active at its start

    @property
    def end_s(self) -> float:
        return self.start_s + self.hold_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start_s": round(self.start_s, 3),
            "hold_s": round(self.hold_s, 3),
            "tolerated": self.tolerated,
            **self.action.as_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Planned:
        return cls(
            int(d["index"]),
            float(d["start_s"]),
            float(d["hold_s"]),
            Action.from_dict(d),
            bool(d["tolerated"]),
        )


@dataclass(frozen=True)
class Shape:
    """How the campaign draws: the pause between two starts, how long a fault is held, how many may be
    active at once, and how often an action the analysis does not tolerate is chosen on purpose."""

    pause_s: tuple[float, float] = (1.0, 5.0)
    hold_s: tuple[float, float] = (2.0, 8.0)
    max_active: int = 2
    beyond_share: float = 0.05
    # A healed fault still counts as active this long: its recovery (a restarted agent rebuilding its
    # routers, say) is not yet over, and a fault on top of it is a fault on top of two.
    settle_s: float = 4.0


def menu(
    dep: Deployment,
    services: Iterable[tuple[str, str]],
    routers: Mapping[str, str] | None = None,
    goals: Goals = Goals(),
) -> tuple[Action, ...]:
    """Every action the lab can do to this deployment. `services`: the (service, host) pairs the lab runs
    (`lab fail` names a service as faults.SERVICES does; the analysis names components the same way);
    `routers`: router name -> the id the controllers know it by, for operators' moves (none: no operator
    requests)."""
    actions: list[Action] = []
    net_nodes = set(dep.hosts_of("l3-agent"))
    for service, host in sorted(set(services)):
        goal = _service_goal(goals, service, host in net_nodes)
        for kind in ("kill", "freeze"):
            actions.append(
                Action(
                    f"{kind}-{service} {host}",
                    ((kind, f"{service}:{host}"),),
                    frozenset({host}),
                    failed_instances=frozenset({(service, host)}),
                    goal_s=goal,
                )
            )
    with_vms = set(dep.hosts_of("nova-compute"))
    for h in dep.hosts:
        # The VMs on a failed compute host are down with it (the analysis: local): reported, not judged.
        host_goal = None if h.name in with_vms else _host_goal(goals, h.name in net_nodes)
        for kind in ("freeze-host", "cut"):
            actions.append(
                Action(
                    f"{kind} {h.name}",
                    ((kind, h.name),),
                    frozenset({h.name}),
                    frozenset({h.name}),
                    goal_s=host_goal,
                )
            )
        # Under packet loss any VM behind the host misses rounds now and then: reported, not judged.
        actions.append(Action(f"loss {h.name}", (("degrade", h.name),), frozenset({h.name}), goal_s=None))
    actions += _partitions(dep, net_nodes, goals)
    if routers is not None:
        actions += operator_requests(dep, routers, goals)
    return tuple(actions)


def operator_requests(dep: Deployment, routers: Mapping[str, str], goals: Goals = Goals()) -> list[Action]:
    """What an operator may ask the controllers while faults hold: move a router to a network node (a
    no-op where it already is), even routers out, switch to an anchor policy, drain a host's API
    replicas out of HAProxy. A drained host counts, for the analysis, as its load-balanced replicas lost."""
    nodes = sorted(dep.hosts_of("l3-agent"))
    net = frozenset(nodes)
    out = [
        Action(f"move {name} {node}", (), net, goal_s=goals.moves_routers_s, ctl=("move", rid, node))
        for name, rid in sorted(routers.items())
        for node in nodes
    ]
    if routers:
        out.append(Action("rebalance", (), net, goal_s=goals.moves_routers_s, ctl=("rebalance",)))
    for policy in ("paper", "neutron"):
        out.append(Action(f"policy {policy}", (), net, ctl=("policy", policy), undo=("policy", "hastack")))
    for host, apis in sorted(dep.api_replicas().items()):
        lost = frozenset((c, host) for c in apis)
        drain = Action(f"drain {host}", (), frozenset({host}), failed_instances=lost)
        out.append(replace(drain, ctl=("drain", host), undo=("enable", host)))
    return out


def _host_goal(goals: Goals, network_node: bool) -> float:
    return goals.moves_routers_s if network_node else UNSEEN_GOAL_S


def _service_goal(goals: Goals, service: str, on_network_node: bool) -> float:
    if service == "hastack-controller":
        return goals.controller_s
    if on_network_node and service in NETWORK_NODE_SERVICES:
        return goals.moves_routers_s
    return UNSEEN_GOAL_S


def _partitions(dep: Deployment, net_nodes: set[str], goals: Goals) -> list[Action]:
    """A network node cut off from every etcd host, or from every controller; one etcd host cut off from
    the others (a minority split: etcd keeps its quorum)."""
    etcd, controllers = dep.hosts_of("etcd"), dep.hosts_of("hastack-controller")
    # Cut off from etcd, a node loses its lease like a failed one; from the controllers alone it loses
    # its grants where they are on (its routers move), and nothing where they are off.
    grants = grant_timing(dep) is not None
    out = []
    for node in sorted(net_nodes):
        for name, peers in (("etcd-cut-off", etcd), ("controllers-cut-off", controllers)):
            others = tuple(p for p in peers if p != node)
            moves = name == "etcd-cut-off" or grants
            if others:
                out.append(
                    Action(
                        f"{name} {node}",
                        tuple(("partition", f"{node}:{p}") for p in others),
                        frozenset({node, *others}),
                        failed_instances=frozenset({("l3-agent", node)}) if moves else frozenset(),
                        goal_s=goals.moves_routers_s if moves else UNSEEN_GOAL_S,
                    )
                )
    for member in etcd:
        others = tuple(p for p in etcd if p != member)
        if len(others) >= 2:
            out.append(
                Action(
                    f"etcd-minority {member}",
                    tuple(("partition", f"{member}:{p}") for p in others),
                    frozenset(etcd),
                    # Split from its peers, the host's side of every cluster there is a minority:
                    # Galera's and RabbitMQ's as well as etcd's, and its keepalived hears no other.
                    failed_instances=frozenset((c, member) for c in dep.components_on(member)),
                )
            )
    return out


def is_tolerated(dep: Deployment, actions: Sequence[Action]) -> bool:
    """Whether the analysis tolerates these actions together (no component lost cluster-wide)."""
    failure = Failure(
        " + ".join(a.label for a in actions),
        frozenset().union(*(a.failed_hosts for a in actions)),
        frozenset().union(*(a.failed_instances for a in actions)),
    )
    return evaluate(dep, failure).is_tolerated


def draw(
    dep: Deployment, actions: Sequence[Action], count: int, seed: int, shape: Shape = Shape()
) -> tuple[Planned, ...]:
    """`count` actions at random times, reproducible from `seed`. Up to `shape.max_active` overlap, on
    disjoint hosts; each is tolerated with those still active, except a `beyond_share` chosen not to be
    (when such a choice exists), recorded as such."""
    rng = random.Random(seed)
    plan: list[Planned] = []
    judged: dict[tuple[Action, ...], bool] = {}

    def judge(others: tuple[Action, ...], action: Action) -> bool:
        key = tuple(sorted((*others, action), key=lambda a: a.label))
        if key not in judged:  # the analysis takes ~1 ms; a campaign asks the same question often
            judged[key] = is_tolerated(dep, key)
        return judged[key]

    t = 0.0
    for index in range(count):
        t += rng.uniform(*shape.pause_s)
        active = [p for p in plan if p.end_s + shape.settle_s > t]
        if len(active) >= shape.max_active:
            t = min(p.end_s for p in active) + shape.settle_s + 0.5
            active = [p for p in plan if p.end_s + shape.settle_s > t]
        busy = frozenset().union(*(p.action.hosts for p in active))
        free = [a for a in actions if not a.hosts & busy]
        if not free:  # every action touches a busy host: wait for the active faults to end
            t, active, free = max(p.end_s for p in active) + shape.settle_s + 0.5, [], list(actions)
        others = tuple(p.action for p in active)
        ok = [a for a in free if judge(others, a)]
        beyond = [a for a in free if a not in ok]
        pool = beyond if beyond and (not ok or rng.random() < shape.beyond_share) else ok
        # A kind first, then a target: each kind is as likely, however many targets it has.
        kind = rng.choice(sorted({a.kind for a in pool}))
        action = rng.choice([a for a in pool if a.kind == kind])
        plan.append(Planned(index, t, rng.uniform(*shape.hold_s), action, action in ok))
    return tuple(plan)


def duration_s(plan: Sequence[Planned]) -> float:
    return max((p.end_s for p in plan), default=0.0)
