"""The lab's HA claims under real faults: each test injects a fault during a client loop, checks what the
client saw, and heals."""

from __future__ import annotations

import time
from pathlib import Path

from hastack.bench import stateful
from hastack.bench.lablink import inject as fail_all
from hastack.lab import faults, galera, loadbalancer, restart, system
from hastack.lab.state import LabState, locked
from tests.lab.conftest import Lab
from tests.lab.helpers import Probe, fail, failures, heal

PASSWORD = "hastack-lab"
KEYSTONE = "http://10.240.0.100:5000/v3"


def test_killed_keystone_replica_fails_no_request(lab: Lab) -> None:
    probe = Probe(
        lab.plan,
        "cmp1",
        "keystone",
        "--url",
        KEYSTONE,
        "--seconds",
        "8",
        "--interval",
        "0.05",
        password=PASSWORD,
    )
    time.sleep(2.5)
    fail(lab.plan, "kill", "keystone:ctl1")
    samples = probe.samples()
    heal(lab.plan, "ctl1")
    assert len(samples) > 100
    assert failures(samples) == []


def test_killed_master_load_balancer_moves_the_vip_and_requests_continue(lab: Lab) -> None:
    (holder,) = next(iter(loadbalancer.vip_holders(lab.plan).values()))
    probe = Probe(
        lab.plan,
        "cmp2",
        "keystone",
        "--url",
        KEYSTONE,
        "--seconds",
        "10",
        "--interval",
        "0.05",
        "--timeout",
        "2",
        password=PASSWORD,
    )
    time.sleep(2.5)
    killed_at = time.time()
    fail(lab.plan, "kill", f"keepalived:{holder}")
    fail(lab.plan, "kill", f"haproxy:{holder}")
    samples = probe.samples()
    (new_holder,) = next(iter(loadbalancer.vip_holders(lab.plan).values()))
    heal(lab.plan, holder)
    assert new_holder != holder
    late = [s for s in failures(samples) if s["t"] > killed_at + 2.0]
    assert late == [], f"requests still failed 2 s after the kill: {late[:3]}"
    assert sum(s["ok"] for s in samples if s["t"] > killed_at + 2.0) > 50


def test_killed_galera_writer_loses_no_acknowledged_commit_and_rejoins(lab: Lab) -> None:
    run = f"kill-writer-{time.time_ns()}"
    probe = Probe(
        lab.plan,
        "ctl1",
        "sql",
        "--host",
        "10.240.0.100",
        "--run",
        run,
        "--seconds",
        "12",
        "--interval",
        "0.05",
        password=PASSWORD,
    )
    time.sleep(3)
    fail(lab.plan, "kill", "database:db1")  # db1 takes the writes through the VIP
    samples = probe.samples()
    heal(lab.plan, "db1")
    acknowledged = {s["seq"] for s in samples if s["ok"]}
    assert len(acknowledged) > 100
    assert any(s["ok"] for s in samples[-20:]), "writes did not resume after the kill"
    for host in ("db1", "db2", "db3"):
        stored = galera.sql(lab.plan, host, f"SELECT seq FROM hastack.probe_writes WHERE run = '{run}'")
        missing = acknowledged - {int(x) for x in stored.split()}
        assert not missing, f"{host} lacks acknowledged commits {sorted(missing)[:10]}"
        assert galera.status(lab.plan, host)["wsrep_cluster_size"] == "3"


def test_killed_rabbitmq_node_loses_no_confirmed_message(lab: Lab) -> None:
    """The bench's own mq trial (bench/stateful.py): confirmed publishing to a quorum queue, its leader's
    node killed, the queue drained from the survivors; every confirmed message must be among them."""
    figures = stateful.run_mq(lab.plan, lambda _said: None)["figures"]
    assert figures["confirmed"] > 200
    assert figures["lost"] == 0, f"confirmed but lost: {figures}"


def _proc_state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def _rtt_ms(lab: Lab, source: str, target: str) -> float | None:
    argv = system.in_netns(lab.plan.host(source).netns, ["ping", "-c", "1", "-W", "1", "-n", target])
    out = system.run(argv, check=False).stdout
    return float(out.split("time=")[1].split()[0]) if "time=" in out else None


def _answered(lab: Lab, source: str, target: str, count: int) -> int:
    argv = ["ping", "-c", str(count), "-i", "0.01", "-W", "0.5", "-n", "-q", target]
    out = system.run(system.in_netns(lab.plan.host(source).netns, argv), check=False).stdout
    return int(out.split(" received")[0].rsplit(",", 1)[1])


def test_freeze_freeze_host_partition_and_degrade_are_recorded_and_healed(lab: Lab) -> None:
    keystone = faults.service_records(LabState.load(), "keystone", "ctl2")
    fail(lab.plan, "freeze", "keystone:ctl2")
    assert {_proc_state(r.pid) for r in keystone} == {"T"}
    fail(lab.plan, "freeze-host", "ctl3")
    frozen = system.netns_pids(lab.plan.host("ctl3").netns)
    assert frozen
    assert {_proc_state(pid) for pid in frozen} == {"T"}
    fail(lab.plan, "partition", "db1:ctl1")
    assert _rtt_ms(lab, "ctl1", "10.240.0.11") is None
    assert _rtt_ms(lab, "ctl1", "10.240.0.12") is not None
    with locked():
        faults.inject(lab.plan, LabState.load(), faults.parse(lab.plan, "degrade", "cmp1", loss_pct=50))
    answered = _answered(lab, "ctl1", "10.240.0.41", count=40)
    assert 0 < answered < 40, f"{answered} of 40 answered with 50% loss"
    assert {f["kind"] for f in LabState.load().faults} == {"freeze", "freeze-host", "partition", "degrade"}
    heal(lab.plan)
    assert LabState.load().faults == []
    assert "T" not in {_proc_state(r.pid) for r in keystone}
    assert "T" not in {_proc_state(pid) for pid in frozen}
    assert _rtt_ms(lab, "ctl1", "10.240.0.11") is not None
    assert _answered(lab, "ctl1", "10.240.0.41", count=40) == 40


def test_whole_galera_cluster_restarts_from_the_most_advanced_node(lab: Lab) -> None:
    run = f"whole-{time.time_ns()}"
    samples = Probe(
        lab.plan,
        "ctl1",
        "sql",
        "--host",
        "10.240.0.100",
        "--run",
        run,
        "--seconds",
        "2",
        "--interval",
        "0.02",
        password=PASSWORD,
    ).samples()
    acknowledged = {s["seq"] for s in samples if s["ok"]}
    assert len(acknowledged) > 50
    for host in ("db3", "db2", "db1"):
        fail(lab.plan, "kill", f"database:{host}")
    heal(lab.plan)  # no node runs: the one with the highest recovered seqno bootstraps, the others join
    for host in ("db1", "db2", "db3"):
        status = galera.status(lab.plan, host)
        assert (status["wsrep_cluster_size"], status["wsrep_cluster_status"]) == ("3", "Primary"), host
        stored = galera.sql(lab.plan, host, f"SELECT seq FROM hastack.probe_writes WHERE run = '{run}'")
        assert acknowledged <= {int(x) for x in stored.split()}, host


def test_a_galera_cluster_that_lost_every_node_comes_back_as_systemd_restarts_them(lab: Lab) -> None:
    """No bootstrap by hand: each node restarts as its unit would (from the position InnoDB recovered),
    and the rendered pc.recovery forms the last primary component again once its members are back."""
    run = f"crash-{time.time_ns()}"
    probe = ("sql", "--host", "10.240.0.100", "--run", run, "--seconds", "2", "--interval", "0.02")
    samples = Probe(lab.plan, "ctl1", *probe, password=PASSWORD).samples()
    acknowledged = {s["seq"] for s in samples if s["ok"]}
    assert len(acknowledged) > 50
    hosts = lab.plan.deployment.hosts_of("database")
    fail_all(lab.plan, *[("kill", f"database:{host}") for host in hosts])  # as a power cut would
    with locked():  # the fault campaign's heal of a kill: the unit starts the process again
        state = LabState.load()
        for fault in faults.recorded(state, None):
            faults.undo(lab.plan, state, fault)
            faults.forget(state, fault)
        for host in hosts:
            restart.restart(lab.plan, state, "database", host)

    def primary_everywhere() -> bool:
        statuses = [galera.status(lab.plan, h) for h in hosts]
        wanted = ("3", "Primary")
        return all((s.get("wsrep_cluster_size"), s.get("wsrep_cluster_status")) == wanted for s in statuses)

    system.poll("the Galera cluster to form again by itself", primary_everywhere, 180, 1)
    for host in hosts:
        stored = galera.sql(lab.plan, host, f"SELECT seq FROM hastack.probe_writes WHERE run = '{run}'")
        assert acknowledged <= {int(x) for x in stored.split()}, host
