"""The fault campaign's schedule and verdict: reproducible, overlapping on disjoint hosts, judged by the
analysis; breaches found in what the workloads recorded."""

from __future__ import annotations

import itertools

import pytest

from hastack.bench import chaos
from hastack.bench.chaosfigures import Done, fault_gaps, invariants, outages, unrecovered
from hastack.lab.faults import SERVICES
from hastack.model import Deployment


@pytest.fixture(scope="module")
def actions(paper: Deployment) -> tuple[chaos.Action, ...]:
    services = [(s, h) for s in SERVICES for h in paper.hosts_of(s) if s != "dhcp-agent"]
    return chaos.menu(paper, services, {"r0000": "id-0", "r0001": "id-1"})


def test_the_menu_holds_every_kind_of_fault(actions: tuple[chaos.Action, ...]) -> None:
    labels = {a.label for a in actions}
    assert {"kill-etcd db1", "freeze-hastack-controller ctl2", "cut net1", "freeze-host db3"} <= labels
    assert {"etcd-cut-off net1", "controllers-cut-off net2", "etcd-minority db2", "loss cmp1"} <= labels
    cut_off = next(a for a in actions if a.label == "etcd-cut-off net1")
    assert cut_off.faults == (("partition", "net1:db1"), ("partition", "net1:db2"), ("partition", "net1:db3"))
    assert cut_off.goal_s == 1.5
    split = next(a for a in actions if a.label == "etcd-minority db2")
    assert {("etcd", "db2"), ("database", "db2"), ("rabbitmq", "db2")} <= split.failed_instances
    assert (
        next(a for a in actions if a.label == "kill-etcd db1").goal_s == 0.3
    )  # must not show on the data plane


def test_the_menu_holds_operators_requests_with_their_undo(actions: tuple[chaos.Action, ...]) -> None:
    by_label = {a.label: a for a in actions}
    move = by_label["move r0001 net2"]
    assert (move.ctl, move.undo, move.faults, move.goal_s) == (("move", "id-1", "net2"), (), (), 1.5)
    assert by_label["rebalance"].ctl == ("rebalance",)
    assert (by_label["policy paper"].ctl, by_label["policy paper"].undo) == (
        ("policy", "paper"),
        ("policy", "hastack"),
    )
    drain = by_label["drain ctl2"]
    assert (drain.ctl, drain.undo, drain.hosts) == (("drain", "ctl2"), ("enable", "ctl2"), {"ctl2"})
    assert ("keystone", "ctl2") in drain.failed_instances  # the analysis sees its replicas gone
    assert "drain db1" not in by_label  # Galera's writer is not drained: the controller refuses it
    # Moves and policies own every network node: no node fault overlaps an anchor policy's window.
    assert by_label["policy neutron"].hosts == by_label["move r0000 net1"].hosts == {"net1", "net2"}


def test_the_openstack_profile_judges_failovers_by_what_real_neutron_takes(paper: Deployment) -> None:
    services = [("l3-agent", "net1"), ("etcd", "db1"), ("hastack-controller", "ctl1")]
    goals = chaos.GOALS["openstack"]
    by_label = {a.label: a.goal_s for a in chaos.menu(paper, services, {"r0000": "uuid-0"}, goals)}
    assert by_label["cut net1"] == by_label["kill-l3-agent net1"] == by_label["move r0000 net2"] == 40.0
    assert by_label["kill-hastack-controller ctl1"] == 40.0
    assert by_label["kill-etcd db1"] == by_label["cut db1"] == 0.3  # the control plane alone: unseen
    assert chaos.GOALS["lab"].moves_routers_s == 1.5


def test_an_older_schedule_without_operators_requests_still_replays() -> None:
    old = {
        "index": 0, "start_s": 1.0, "hold_s": 2.0, "tolerated": True, "label": "cut net1",
        "faults": [["cut", "net1"]], "hosts": ["net1"], "failed_hosts": ["net1"],
        "failed_instances": [], "goal_s": 1.5,
    }  # fmt: skip
    planned = chaos.Planned.from_dict(old)
    assert (planned.action.ctl, planned.action.undo, planned.action.faults) == ((), (), (("cut", "net1"),))


def test_a_schedule_is_the_same_for_the_same_seed(
    paper: Deployment, actions: tuple[chaos.Action, ...]
) -> None:
    one = chaos.draw(paper, actions, 40, seed=7)
    assert one == chaos.draw(paper, actions, 40, seed=7)
    assert one != chaos.draw(paper, actions, 40, seed=8)
    replayed = tuple(chaos.Planned.from_dict(x.as_dict()) for x in one)
    assert [x.as_dict() for x in replayed] == [x.as_dict() for x in one]


def test_faults_overlap_on_disjoint_hosts_and_are_judged_with_those_active(
    paper: Deployment, actions: tuple[chaos.Action, ...]
) -> None:
    shape = chaos.Shape(max_active=2, beyond_share=0.2)
    plan = chaos.draw(paper, actions, 200, seed=1, shape=shape)
    overlapping = 0
    for x in plan:
        # A healed fault counts as active while its recovery settles.
        active = [y for y in plan if y.index < x.index and y.end_s + shape.settle_s > x.start_s]
        assert len(active) < 2
        assert all(not (y.action.hosts & x.action.hosts) for y in active)
        assert x.tolerated == chaos.is_tolerated(paper, [*(y.action for y in active), x.action])
        overlapping += bool(active)
    assert overlapping > 10  # they do overlap
    beyond = [x for x in plan if not x.tolerated]
    assert beyond  # and some go beyond what the analysis tolerates, on purpose
    assert {"move", "rebalance", "policy", "drain"} <= {x.action.kind for x in plan}
    assert all(a.start_s < b.start_s for a, b in itertools.pairwise(plan))


ROUNDS = [
    {"t": 100.0, "missing": []},
    {"t": 100.1, "missing": [1]},
    {"t": 100.2, "missing": [1]},
    {"t": 100.3, "missing": [0, 1]},
    {"t": 100.4, "missing": []},
    {"t": 100.5, "missing": []},
]


def test_outages_are_runs_of_missed_rounds() -> None:
    assert outages(ROUNDS, 2) == [(1, 100.1, 100.4), (0, 100.3, 100.4)]
    assert unrecovered([*ROUNDS, {"t": 101.0, "missing": [0]}], last_s=0.4) == [0]
    assert unrecovered(ROUNDS) == []


def test_a_fault_owns_the_outages_that_began_while_it_was_active() -> None:
    found = outages(ROUNDS, 2)
    during = Done(0, "cut net1", "cut", True, 1.5, 100.05, 100.2)
    assert fault_gaps(during, found) == (0.3, 0.1)  # the longest, and the one that began after the heal
    before = Done(1, "cut net2", "cut", True, 1.5, 95.0, 95.5)  # watched to 99.5 s
    assert fault_gaps(before, found) == (0.0, 0.0)


def test_breaches_are_found_and_said() -> None:
    slow = Done(3, "cut net1", "cut", True, 0.2, 100.05, 100.2)  # a 0.3 s outage against a 0.2 s goal
    beyond = Done(4, "freeze-host db1", "freeze-host", False, 0.3, 100.25, 100.3)
    skipped = Done(5, "kill-etcd db1", "kill-etcd", True, 0.3, None, None, "etcd is not running on db1")
    verdict, rows = invariants(
        [slow, beyond, skipped], ROUNDS, 2, {"could": {"r1": 0.04}, "did": {"r1": 0.0}}, 0, 2
    )
    said = [(b["index"], b["fault"]) for b in verdict["breaches"]]
    assert said == [(3, "cut net1"), (None, "r1"), (None, "data")]
    assert verdict["dual_active_s"] == 0.04
    assert verdict["lost_messages"] == 2
    assert verdict["skipped"] == 1
    assert verdict["beyond_tolerance"] == [
        {"index": 4, "fault": "freeze-host db1", "gap_s": 0.1, "gap_after_heal_s": 0.1}
    ]
    assert verdict["gap_s"] == {
        "cut": {"faults": 1, "median_s": 0.3, "worst_s": 0.3, "keystone_worst_s": 0.0}
    }
    assert [r["gap_s"] for r in rows] == [0.3, 0.1, 0.0]


def test_a_clean_campaign_has_no_breach() -> None:
    quiet = [{"t": 100.0 + i / 10, "missing": []} for i in range(20)]
    done = Done(0, "kill-etcd db1", "kill-etcd", True, 0.3, 100.2, 101.0)
    verdict, _rows = invariants([done], quiet, 2, {"could": {}, "did": {}}, 0, 0)
    assert verdict["breaches"] == []
    assert verdict["gap_s"] == {
        "kill-etcd": {"faults": 1, "median_s": 0.0, "worst_s": 0.0, "keystone_worst_s": 0.0}
    }


def test_a_lab_left_broken_or_leaking_is_a_breach() -> None:
    quiet = [{"t": 100.0 + i / 10, "missing": []} for i in range(20)]
    left = ["lab verify: galera: cluster size db1=3, db2=3, db3=down", "namespace hs-x exists, and nothing"]
    verdict, _rows = invariants([], quiet, 2, {"could": {}, "did": {}}, 0, 0, (), left)
    assert verdict["after_campaign"] == left
    assert [b["breach"] for b in verdict["breaches"]] == left


def test_keystone_must_serve_again_after_a_tolerated_fault() -> None:
    quiet = [{"t": 100.0 + i / 10, "missing": []} for i in range(200)]
    frozen = Done(0, "freeze-keystone ctl1", "freeze-keystone", True, 0.3, 100.5, 102.0)
    reads = [{"t": 100.0 + i / 5, "ok": not 101.0 <= 100.0 + i / 5 < 101.4} for i in range(50)]
    verdict, rows = invariants([frozen], quiet, 2, {"could": {}, "did": {}}, 0, 0, reads)
    assert (rows[0]["keystone_gap_s"], rows[0]["keystone_after_heal_s"]) == (0.4, 0.0)
    assert verdict["gap_s"]["freeze-keystone"]["keystone_worst_s"] == 0.4
    assert verdict["breaches"] == []
    stuck = [{"t": 100.0 + i / 5, "ok": 100.0 + i / 5 < 101.0} for i in range(50)]  # never back
    verdict, rows = invariants([frozen], quiet, 2, {"could": {}, "did": {}}, 0, 0, stuck)
    assert rows[0]["keystone_after_heal_s"] == 7.8
    assert verdict["breaches"] == [
        {"index": 0, "fault": "freeze-keystone ctl1", "breach": "Keystone still failing 7.8 s after the heal"}
    ]


def test_keystone_is_judged_after_the_last_heal_of_the_faults_held_while_it_failed() -> None:
    # A node agent killed (goal 1.5 s) while a Galera node is split off (0.3 s): Keystone fails from 100.6
    # to 105.6, 4.6 s past the agent's heal but 2.6 s past the split's. Serving again by 4 s: no breach.
    quiet = [{"t": 100.0 + i / 10, "missing": []} for i in range(100)]
    agent = Done(0, "kill-hastack-agent net2", "kill-hastack-agent", True, 1.5, 100.0, 101.0)
    split = Done(1, "etcd-minority db1", "etcd-minority", True, 0.3, 100.3, 103.0)
    reads = [{"t": 100.0 + i / 5, "ok": not 100.6 <= 100.0 + i / 5 < 105.5} for i in range(60)]
    verdict, rows = invariants([agent, split], quiet, 2, {"could": {}, "did": {}}, 0, 0, reads)
    assert [r["keystone_after_heal_s"] for r in rows] == [2.6, 0.0]  # blamed on the longer goal's fault
    assert verdict["breaches"] == []
    beyond = Done(1, "etcd-minority db1", "etcd-minority", False, 0.3, 100.3, 103.0)
    _verdict, rows = invariants([agent, beyond], quiet, 2, {"could": {}, "did": {}}, 0, 0, reads)
    assert rows[0]["keystone_after_heal_s"] == 0.0  # not judged beside a fault beyond tolerance


def test_an_outage_is_blamed_on_the_active_fault_with_the_longest_goal() -> None:
    # A node agent killed (its routers move: 1.5 s) while a Keystone replica is frozen (0.3 s): the 1 s
    # outage is the agent's, within its goal, and no breach of the replica's.
    rounds = [{"t": 100.0 + i / 10, "missing": [0] if 10 <= i < 20 else []} for i in range(40)]
    replica = Done(0, "freeze-keystone ctl1", "freeze-keystone", True, 0.3, 100.5, 102.0)
    agent = Done(1, "kill-hastack-agent net1", "kill-hastack-agent", True, 1.5, 100.8, 101.5)
    verdict, rows = invariants([replica, agent], rounds, 1, {}, 0, 0)
    assert verdict["breaches"] == []
    assert [r["gap_s"] for r in rows] == [0.0, 1.0]
    # Packet loss is not judged: an outage then is nobody's breach.
    loss = Done(2, "loss cmp1", "loss", True, None, 100.5, 102.0)
    verdict, rows = invariants([replica, loss], rounds, 1, {}, 0, 0)
    assert verdict["breaches"] == []
    assert [r["gap_s"] for r in rows] == [0.0, 1.0]


def test_an_outage_after_a_heal_with_nothing_held_is_allowed_the_after_heal_goal() -> None:
    # A node healed at 100.5 s; 0.6 s later its routers' VMs go dark for 0.5 s: a second outage, not a
    # failover (no fault is held then), so 0.3 s is all it may cost.
    rounds = [{"t": 100.0 + i / 10, "missing": [0] if 11 <= i < 16 else []} for i in range(30)]
    node = Done(0, "freeze-host net1", "freeze-host", True, 1.5, 99.0, 100.5)
    verdict, rows = invariants([node], rounds, 1, {}, 0, 0)
    assert [b["fault"] for b in verdict["breaches"]] == ["freeze-host net1"]
    assert "allowed 0.3 s" in verdict["breaches"][0]["breach"]
    assert rows[0]["gap_after_heal_s"] == 0.5
    # With no fault about at all, an outage is a breach of its own.
    verdict, _rows = invariants([], rounds, 1, {}, 0, 0)
    assert [b["fault"] for b in verdict["breaches"]] == ["no fault"]


def test_a_fault_only_settling_gives_an_outage_no_allowance() -> None:
    # A controller restarted 0.5 s ago (goal 2.5 s while held) and an etcd member split off now (0.3 s):
    # a 1 s outage is the split's to answer for, not covered by the controller's goal.
    rounds = [{"t": 100.0 + i / 10, "missing": [0] if 10 <= i < 20 else []} for i in range(40)]
    controller = Done(0, "kill-hastack-controller ctl2", "kill-hastack-controller", True, 2.5, 98.0, 100.5)
    split = Done(1, "etcd-minority db1", "etcd-minority", True, 0.3, 100.8, 103.0)
    verdict, _rows = invariants([controller, split], rounds, 1, {}, 0, 0)
    assert [b["fault"] for b in verdict["breaches"]] == ["etcd-minority db1"]
    assert "allowed 0.3 s" in verdict["breaches"][0]["breach"]
