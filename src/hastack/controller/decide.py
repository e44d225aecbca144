"""The controller's decision: one immutable snapshot in, the router moves and one sentence out. Pure.

A network node has failed when its lease is gone from the store (policy `hastack`), or, with grants on, it
has sent this controller no grant round for `G + m` (`hastack`), or its L3 agent's last
heartbeat is older than the policy's agent-down time (`paper`, `neutron`), or its agent is administratively
disabled. Its routers go to the healthy agents, least loaded first. Guards, in order:
- only the leader moves routers, and not while an operator has paused it;
- under `neutron` on a backend that reschedules by itself (a real Neutron with
  allow_automatic_l3agent_failover), the controller moves nothing: the record follows the backend;
- a controller waits one lease TTL after it started, its store came back, the policy changed or it last
  promised a node failsafe (a node may forward that long on what it was told before);
- a new leader waits one lease TTL after its election before it places an unbound router (the deposed
  leader may have unbound it from a node that still forwards it) or, on a backend whose moves are not
  store transactions, before it moves anything (the deposed leader's calls may still be in flight);
  routers of a node whose lease is gone move at once: its gates ran out with the lease;
- storm guard: when more than `storm_share` of the nodes fail together, the controller suspects its own
  partition or trouble in the store and moves nothing;
- hysteresis: a node that came back must have been healthy for `stable_s` before it receives routers, and
  it comes back empty (routers return to it only by rebalancing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    host: str
    has_lease: bool
    heartbeat_age_s: float  # since the L3 agent's last report
    admin_up: bool
    healthy_for_s: float  # how long it has been continuously healthy (0 while failed)
    # False: the node may still forward on gates a policy without fencing left open (it has taken no
    # lease since the switch to `hastack`): its routers are not moved away until those have run out.
    gates_bounded: bool = True
    silent_for_s: float = 0.0  # since its last grant round reached this controller (0: grants off)


@dataclass(frozen=True)
class Snapshot:
    is_leader: bool
    leader_for_s: float
    paused: bool
    nodes: tuple[Node, ...]
    hosting: Mapping[str, tuple[str, ...]]  # host -> routers it hosts
    unbound: tuple[str, ...] = ()  # routers no agent hosts (a move cut short half-way, a new router)
    # Since this controller started, its store came back, the policy changed or it last promised a node
    # failsafe, whichever is latest.
    settled_for_s: float = float("inf")


POLICIES = ("hastack", "paper", "neutron")


@dataclass(frozen=True)
class Policy:
    name: str
    detect_by_lease: bool
    agent_down_s: float
    lease_ttl_s: float
    tick_s: float = 0.1  # how often the controller checks, at the latest
    periodic: bool = False  # checks only every tick_s, not when the store reports a change
    concurrency: int = 1  # routers moved at once
    storm_share: float = 0.5
    stable_s: float = 2.0
    moves_routers: bool = True  # False: the backend itself moves them (the controller only follows)
    # True: every move is a store transaction conditioned on the leader key, so a deposed leader's move
    # cannot land after its successor's election (the lab backend); False: Neutron's API calls.
    moves_fenced: bool = False
    # With grants on (`hastack` only): a node this long without a grant round here counts as failed, and
    # its routers move once a majority of controllers has promised to grant it nothing more.
    silent_s: float = float("inf")

    @classmethod
    def named(
        cls,
        name: str,
        lease_ttl_s: float,
        tick_s: float = 0.1,
        backend_schedules: bool = False,
        moves_fenced: bool = False,
    ) -> Policy:
        """`hastack`: lease-based, woken by store events, 16 moves at once. `paper`: the paper's periodic
        check every 40 s (its footnote 7) of agents dead by Grizzly's agent_down_time (9 s), one router at a
        time. `neutron`: Neutron's rescheduler with its defaults (agent_down_time 75 s): a router moves
        once its agent has not reported for 2 x 75 s (agent_dead_limit_seconds), checked every 75/2 s,
        one at a time; on a backend that reschedules by itself (`backend_schedules`: a real Neutron),
        left to it."""
        f = moves_fenced
        if name == "hastack":
            return cls(name, True, 3 * lease_ttl_s, lease_ttl_s, tick_s, concurrency=16, moves_fenced=f)
        if name == "paper":
            return cls(name, False, 9.0, lease_ttl_s, 40.0, True, concurrency=1, moves_fenced=f)
        if name == "neutron":
            if backend_schedules:  # ticks as often as hastack's: the record follows Neutron without delay
                return cls(name, False, 150.0, lease_ttl_s, tick_s=tick_s, moves_routers=False)
            return cls(name, False, 150.0, lease_ttl_s, 37.5, True, concurrency=1, moves_fenced=f)
        raise ValueError(f"unknown policy {name!r} (hastack, paper or neutron)")


@dataclass(frozen=True)
class Move:
    router: str
    source: str  # "" for a router no agent hosted
    target: str


@dataclass(frozen=True)
class Decision:
    moves: tuple[Move, ...]
    sentence: str


def failure_reason(node: Node, policy: Policy) -> str | None:
    """Why the node counts as failed under `policy`, or None if it is healthy."""
    if not node.admin_up:
        return "agent disabled"
    if policy.detect_by_lease and not node.has_lease:
        return "lease gone"
    if policy.detect_by_lease and node.silent_for_s >= policy.silent_s:
        return f"no grant round for {node.silent_for_s * 1000:.0f} ms"
    if not policy.detect_by_lease and node.heartbeat_age_s > policy.agent_down_s:
        return f"no heartbeat for {node.heartbeat_age_s:.0f} s"
    return None


def decide(s: Snapshot, policy: Policy) -> Decision:
    if not s.is_leader:
        return Decision((), "standby: another controller leads")
    if s.paused:
        return Decision((), "paused by the operator: moving nothing")
    if not policy.moves_routers:
        return Decision((), f"policy {policy.name}: the backend moves routers itself, the record follows it")
    failed = {n.host: r for n in s.nodes if (r := failure_reason(n, policy)) is not None}
    unbounded = sorted(n.host for n in s.nodes if n.host in failed and not n.gates_bounded)
    stranded = {h: s.hosting.get(h, ()) for h in failed if s.hosting.get(h) and h not in unbounded}
    if s.unbound:
        stranded[""] = s.unbound
        failed[""] = "hosted by no agent"
    if not stranded:
        if any(s.hosting.get(h) for h in unbounded):
            return Decision(
                (),
                f"not moving the routers of {', '.join(unbounded)}: the previous policy left its gates "
                "open and it has taken no lease since",
            )
        return Decision(
            (),
            f"all {len(s.nodes)} network nodes healthy"
            if not failed
            else f"{len(failed)} failed node(s) host no router",
        )
    if waiting := _settling(s, policy):
        return Decision((), waiting)
    down = len(failed) - (1 if s.unbound else 0)
    if len(s.nodes) > 1 and down / len(s.nodes) > policy.storm_share:
        return Decision(
            (),
            f"storm guard: {down} of {len(s.nodes)} network nodes failed at once; "
            "suspecting my own partition or the store, moving nothing",
        )
    targets = [n.host for n in s.nodes if n.host not in failed and n.healthy_for_s >= policy.stable_s]
    if not targets:
        count = sum(len(r) for r in stranded.values())
        return Decision((), f"no healthy L3 agent to move {count} routers to")
    return _balanced(s, stranded, targets, failed)


def _settling(s: Snapshot, policy: Policy) -> str:
    """Why the leader must wait before it moves anything, or "" if it need not (the module says why)."""
    ttl = policy.lease_ttl_s
    if s.settled_for_s < ttl:
        return (
            f"settling for {s.settled_for_s:.1f} s (started, store back, new policy or a failsafe promise): "
            "waiting one lease TTL before moving routers"
        )
    if s.leader_for_s < ttl and (s.unbound or not policy.moves_fenced):
        why = "an unbound router" if policy.moves_fenced else "a backend without fenced moves"
        return f"leader for {s.leader_for_s:.1f} s with {why}: waiting one lease TTL before moving routers"
    return ""


def _balanced(
    s: Snapshot, stranded: Mapping[str, tuple[str, ...]], targets: list[str], reasons: Mapping[str, str]
) -> Decision:
    load = {t: len(s.hosting.get(t, ())) for t in targets}
    moves = []
    for source in sorted(stranded):
        for router in sorted(stranded[source]):
            target = min(targets, key=lambda t: (load[t], t))
            load[target] += 1
            moves.append(Move(router, source, target))
    parts = [
        f"{len(stranded[h])} routers of {h} ({reasons[h]})" if h else f"{len(stranded[h])} unhosted routers"
        for h in sorted(stranded)
    ]
    spread = ", ".join(f"{t} now {load[t]}" for t in sorted(load))
    return Decision(tuple(moves), f"moving {' and '.join(parts)} to healthy agents: {spread}")


def rebalance(s: Snapshot, policy: Policy) -> Decision:
    """Even out the routers over the healthy, stable nodes: from the most to the least loaded until no
    two differ by more than one. Only on request: every such move costs its router a short outage (the
    old gate must run out before the new node builds it), so a returning node is not refilled by itself."""
    healthy = [
        n.host for n in s.nodes if failure_reason(n, policy) is None and n.healthy_for_s >= policy.stable_s
    ]
    if len(healthy) < 2:
        return Decision((), f"{len(healthy)} healthy network node(s): nothing to balance")
    load = {h: list(s.hosting.get(h, ())) for h in healthy}
    moves = []
    while True:
        most = max(sorted(load), key=lambda h: len(load[h]))
        least = min(sorted(load), key=lambda h: len(load[h]))
        if len(load[most]) - len(load[least]) <= 1:
            break
        router = sorted(load[most])[-1]
        load[most].remove(router)
        load[least].append(router)
        moves.append(Move(router, most, least))
    spread = ", ".join(f"{h} {len(load[h])}" for h in sorted(load))
    if not moves:
        return Decision((), f"already balanced: {spread}")
    return Decision(tuple(moves), f"rebalancing {len(moves)} routers: {spread}")
