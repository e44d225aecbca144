"""Failure-impact analysis on plain deployments: what is lost, what masks it, SPOFs and host pairs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hastack.analysis import Failure, Status, analyze, evaluate
from hastack.catalog import Severity
from hastack.model import Deployment, load_deployment


def _statuses(dep: Deployment, failure: Failure) -> dict[str, Status]:
    return {e.component: e.status for e in evaluate(dep, failure).effects}


def test_paper_has_no_single_point_of_failure(paper: Deployment) -> None:
    result = analyze(paper)
    assert result.spofs == ()
    assert all(o.is_tolerated for o in result.hosts + result.instances)


def test_paper_tolerates_every_pair_of_hosts_in_different_roles(paper: Deployment) -> None:
    result = analyze(paper)
    assert len(result.pairs_different_roles) == 37
    assert result.untolerated_pairs == ()


def test_paper_same_role_pairs_that_break_quorum_or_all_network_nodes(paper: Deployment) -> None:
    bad = {o.failure.label for o in analyze(paper).pairs_same_role if not o.is_tolerated}
    # Two controllers of three: with grants on, every gate needs a majority of them.
    controllers = {"hosts ctl1 + ctl2", "hosts ctl1 + ctl3", "hosts ctl2 + ctl3"}
    assert bad == {"hosts db1 + db2", "hosts db1 + db3", "hosts db2 + db3", "hosts net1 + net2", *controllers}


def test_with_grants_two_controllers_down_shut_every_gate_and_without_them_they_do_not(
    paper: Deployment,
) -> None:
    two = Failure(
        "ctl1+ctl2", instances=frozenset({("hastack-controller", "ctl1"), ("hastack-controller", "ctl2")})
    )
    lost = {e.component: e.cause for e in evaluate(paper, two).lost}
    assert lost == {"l3-agent": "every gate shut: grants need a majority of controllers (1 of 3)"}
    off = replace(
        paper,
        inventory=paper.inventory.model_copy(
            update={"timing": paper.inventory.timing.model_copy(update={"grant_ms": 0})}
        ),
    )
    assert evaluate(off, two).lost == ()
    one = Failure("ctl1", instances=frozenset({("hastack-controller", "ctl1")}))
    assert evaluate(paper, one).lost == ()


def test_minimal_shows_database_rabbitmq_keystone_as_high_spofs(minimal: Deployment) -> None:
    spofs = {s.component: s.severity for s in analyze(minimal).spofs}
    for name in ("database", "rabbitmq", "keystone"):
        assert spofs[name] is Severity.HIGH
    assert spofs["nova-scheduler"] is Severity.MEDIUM
    assert "nova-compute" not in spofs  # per-host: it only ever hurts its own host


def test_losing_the_database_cascades_to_everything_that_uses_it(minimal: Deployment) -> None:
    outcome = evaluate(minimal, Failure("db", instances=frozenset({("database", "aio")})))
    causes = {e.component: e.cause for e in outcome.lost}
    assert causes["database"] == "quorum lost (0 of 1)"
    assert causes["keystone"] == "needs database"
    assert causes["nova-conductor"] == "needs database"
    assert "nova-api" not in causes  # Table 1: the API services use neither DB nor MQ
    assert outcome.severity is Severity.HIGH


def test_one_galera_node_of_three_is_masked_by_quorum(paper: Deployment) -> None:
    outcome = evaluate(paper, Failure("db1", hosts=frozenset({"db1"})))
    db = next(e for e in outcome.effects if e.component == "database")
    assert (db.status, db.live, db.total, db.masked_by) == (Status.DEGRADED, 2, 3, "Galera quorum")
    assert outcome.severity is Severity.NONE


def test_all_load_balancers_down_takes_every_balanced_api_down(paper: Deployment) -> None:
    statuses = _statuses(
        paper, Failure("lbs", instances=frozenset({("haproxy", h) for h in ("db1", "db2", "db3")}))
    )
    assert statuses["haproxy"] is Status.LOST
    assert statuses["keystone"] is Status.LOST
    assert "nova-scheduler" not in statuses  # works from the message queue, not through the VIP


def test_keepalived_down_removes_its_hosts_haproxy_from_the_vip(paper: Deployment) -> None:
    outcome = evaluate(paper, Failure("ka", instances=frozenset({("keepalived", "db1")})))
    haproxy = next(e for e in outcome.effects if e.component == "haproxy")
    assert (haproxy.status, haproxy.live) == (Status.DEGRADED, 2)


def test_l3_agent_needs_the_hastack_controller_to_be_masked(
    write_inventory: Callable[[str], Path],
) -> None:
    text = (Path(__file__).resolve().parents[2] / "examples" / "paper.yaml").read_text()
    without_controller = load_deployment(write_inventory(text.replace("  hastack-controller:\n", "")))
    outcome = evaluate(without_controller, Failure("net1", hosts=frozenset({"net1"})))
    l3 = next(e for e in outcome.effects if e.component == "l3-agent")
    assert l3.status is Status.LOST
    assert "no hastack controller" in l3.cause
    assert outcome.severity is Severity.MEDIUM
    assert "l3-agent" in {s.component for s in analyze(without_controller).spofs}


def test_two_node_galera_is_a_spof(write_inventory: Callable[[str], Path]) -> None:
    text = (Path(__file__).resolve().parents[2] / "examples" / "paper.yaml").read_text()
    dep = load_deployment(write_inventory(text.replace("  database:\n", "  database: {replicas: 2}\n")))
    spofs = {s.component: s for s in analyze(dep).spofs}
    assert spofs["database"].severity is Severity.HIGH
    assert "host db1" in spofs["database"].failures


def test_json_shape(minimal: Deployment) -> None:
    data = analyze(minimal).to_dict()
    assert data["deployment"] == "minimal"
    assert {"host_failures", "instance_failures", "single_points_of_failure", "host_pairs"} <= set(data)
    host = data["host_failures"][0]
    assert host["failure"] == "host aio"
    assert host["severity"] == "high"
    assert host["tolerated"] is False
    assert {e["component"] for e in host["effects"] if e["status"] == "lost"} >= {"database", "keystone"}


def test_a_network_node_without_its_node_agent_forwards_nothing(paper: Deployment) -> None:
    # Its gates shut when its lease runs out: with both node agents down, no router forwards anywhere.
    both = frozenset({("hastack-agent", "net1"), ("hastack-agent", "net2")})
    outcome = evaluate(paper, Failure("agents", instances=both))
    assert not outcome.is_tolerated
    assert [e.component for e in outcome.lost] == ["l3-agent"]
    one = evaluate(paper, Failure("agent", instances=frozenset({("hastack-agent", "net1")})))
    assert one.is_tolerated
    l3 = next(e for e in one.effects if e.component == "l3-agent")
    assert (l3.live, l3.total) == (1, 2)
