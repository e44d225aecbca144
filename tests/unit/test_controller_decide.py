"""The controller's decision, driven with plain snapshots: every guard and the balanced placement."""

from __future__ import annotations

from dataclasses import replace

from hastack.controller.decide import Move, Node, Policy, Snapshot, decide

HASTACK = Policy.named("hastack", lease_ttl_s=1.0)


def node(
    host: str, lease: bool = True, heartbeat: float = 0.5, admin: bool = True, healthy: float = 60.0
) -> Node:
    return Node(host, lease, heartbeat, admin, healthy if lease else 0.0)


def snap(
    *nodes: Node,
    leader: bool = True,
    leader_for: float = 30.0,
    paused: bool = False,
    hosting: dict[str, tuple[str, ...]] | None = None,
) -> Snapshot:
    default = {"net1": ("r1", "r2", "r3"), "net2": ("r4",), "net3": ()}
    return Snapshot(leader, leader_for, paused, nodes, hosting if hosting is not None else default)


def test_a_lost_lease_moves_its_routers_to_the_least_loaded_agents() -> None:
    d = decide(snap(node("net1", lease=False), node("net2"), node("net3")), HASTACK)
    assert d.moves == (Move("r1", "net1", "net3"), Move("r2", "net1", "net2"), Move("r3", "net1", "net3"))
    assert d.sentence == "moving 3 routers of net1 (lease gone) to healthy agents: net2 now 2, net3 now 2"


def test_only_the_leader_acts_and_not_while_paused() -> None:
    failed = (node("net1", lease=False), node("net2"), node("net3"))
    assert decide(snap(*failed, leader=False), HASTACK).moves == ()
    assert decide(snap(*failed, leader=False), HASTACK).sentence == "standby: another controller leads"
    paused = decide(snap(*failed, paused=True), HASTACK)
    assert (paused.moves, paused.sentence) == ((), "paused by the operator: moving nothing")


FENCED = Policy.named("hastack", lease_ttl_s=1.0, moves_fenced=True)


def test_a_new_leader_waits_one_lease_ttl_on_a_backend_whose_moves_are_not_fenced() -> None:
    d = decide(snap(node("net1", lease=False), node("net2"), node("net3"), leader_for=0.4), HASTACK)
    assert d.moves == ()
    assert d.sentence == (
        "leader for 0.4 s with a backend without fenced moves: waiting one lease TTL before moving routers"
    )


def test_a_new_leader_moves_the_routers_of_a_node_without_lease_at_once_when_moves_are_fenced() -> None:
    # The deposed leader's moves cannot land any more, and the node's gates ran out with its lease.
    d = decide(snap(node("net1", lease=False), node("net2"), node("net3"), leader_for=0.0), FENCED)
    assert [m.router for m in d.moves] == ["r1", "r2", "r3"]


def test_a_new_leader_waits_before_placing_an_unbound_router() -> None:
    # The deposed leader may have unbound it from a node that still holds its lease and forwards it.
    s = snap(node("net1"), node("net2"), node("net3"), leader_for=0.3)
    d = decide(replace(s, unbound=("r9",)), FENCED)
    assert d.moves == ()
    assert d.sentence == (
        "leader for 0.3 s with an unbound router: waiting one lease TTL before moving routers"
    )
    assert decide(replace(s, unbound=("r9",), leader_for_s=1.0), FENCED).moves == (Move("r9", "", "net3"),)


def test_a_controller_that_just_settled_waits_one_lease_ttl_whoever_leads() -> None:
    # A failsafe promise, a new policy or the store back: a node may forward on what it was told before.
    s = snap(node("net1", lease=False), node("net2"), node("net3"), leader_for=30.0)
    d = decide(replace(s, settled_for_s=0.2), FENCED)
    assert d.moves == ()
    assert d.sentence.startswith("settling for 0.2 s (started, store back, new policy or a failsafe promise)")


def test_storm_guard_freezes_when_most_nodes_fail_together() -> None:
    d = decide(snap(node("net1", lease=False), node("net2", lease=False), node("net3")), HASTACK)
    assert d.moves == ()
    assert d.sentence.startswith("storm guard: 2 of 3 network nodes failed at once")


def test_a_returning_node_receives_nothing_until_it_is_stable() -> None:
    returning = Node("net3", True, 0.1, True, healthy_for_s=0.5)
    d = decide(snap(node("net1", lease=False), node("net2"), returning), HASTACK)
    assert {m.target for m in d.moves} == {"net2"}
    alone = decide(snap(node("net1", lease=False), returning, hosting={"net1": ("r1",), "net3": ()}), HASTACK)
    assert (alone.moves, alone.sentence) == ((), "no healthy L3 agent to move 1 routers to")


def test_anchor_policies_detect_by_heartbeat_age() -> None:
    neutron = Policy.named("neutron", lease_ttl_s=1.0)
    paper = Policy.named("paper", lease_ttl_s=1.0)
    lease_gone_but_reporting = node("net1", lease=False, heartbeat=10.0)
    assert decide(snap(lease_gone_but_reporting, node("net2"), node("net3")), neutron).moves == ()
    silent_50s = Node("net1", False, 50.0, True, 0.0)
    assert decide(snap(silent_50s, node("net2"), node("net3")), neutron).moves == ()
    assert len(decide(snap(silent_50s, node("net2"), node("net3")), paper).moves) == 3
    # Neutron reschedules a router only after 2 x agent_down_time (150 s) without a report.
    silent_140s = Node("net1", False, 140.0, True, 0.0)
    assert decide(snap(silent_140s, node("net2"), node("net3")), neutron).moves == ()
    silent_160s = Node("net1", False, 160.0, True, 0.0)
    moved = decide(snap(silent_160s, node("net2"), node("net3")), neutron)
    assert len(moved.moves) == 3
    assert "no heartbeat for 160 s" in moved.sentence


def test_a_disabled_agent_counts_as_failed_under_every_policy() -> None:
    for name in ("hastack", "paper", "neutron"):
        d = decide(snap(node("net1", admin=False), node("net2"), node("net3")), Policy.named(name, 1.0))
        assert len(d.moves) == 3
        assert "agent disabled" in d.sentence


def test_nothing_to_do() -> None:
    assert (
        decide(snap(node("net1"), node("net2"), node("net3")), HASTACK).sentence
        == "all 3 network nodes healthy"
    )
    empty = decide(snap(node("net1"), node("net2"), node("net3", lease=False)), HASTACK)
    assert (empty.moves, empty.sentence) == ((), "1 failed node(s) host no router")


def test_rebalance_evens_out_healthy_stable_nodes_only() -> None:
    from hastack.controller.decide import rebalance

    hosting = {"net1": ("r1", "r2", "r3", "r4", "r5"), "net2": (), "net3": ("r6",)}
    d = rebalance(snap(node("net1"), node("net2"), node("net3"), hosting=hosting), HASTACK)
    assert d.moves == (Move("r5", "net1", "net2"), Move("r4", "net1", "net2"), Move("r3", "net1", "net3"))
    assert d.sentence == "rebalancing 3 routers: net1 2, net2 2, net3 2"
    fresh = node("net2", healthy=0.5)  # came back half a second ago: not a target yet
    d = rebalance(snap(node("net1"), fresh, node("net3"), hosting=hosting), HASTACK)
    assert {m.target for m in d.moves} == {"net3"}
    even = {"net1": ("r1",), "net2": ("r2", "r3"), "net3": ("r4",)}
    assert rebalance(snap(node("net1"), node("net2"), node("net3"), hosting=even), HASTACK).moves == ()
