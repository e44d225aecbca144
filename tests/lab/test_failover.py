"""The HA controller and node agents on the lab: network-node failures, the leader's death, drains.

Each failover test pings a VM's floating IP every 100 ms and samples every router's kernel gate on both
network nodes (bench.failover.run_trial); "never on two nodes" is checked on those gates, not on the
assignment in the store.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from hastack.bench import failover
from hastack.lab import faults, procs, runtime, system
from hastack.lab.hadaemons import ctl
from hastack.lab.plan import LAB_ROOT
from hastack.lab.state import LabState
from hastack.model.endpoints import RUNTIME_PORT, grant_timing
from tests.lab.conftest import PAPER, Lab
from tests.lab.helpers import Probe, fail, failures, heal

INVENTORY = str(PAPER)
PASSWORD = "hastack-lab"


def _trial(lab: Lab, scenario: str) -> failover.Trial:
    trial = failover.run_trial(lab.plan, INVENTORY, scenario, "hastack")
    moved = failover.hosting(lab.plan, INVENTORY)[trial.node]
    assert moved == [], f"{trial.node} still hosts {moved} after {scenario}"
    return trial


def test_killing_the_l3_agent_brings_the_floating_ips_back(lab: Lab) -> None:
    trial = _trial(lab, "l3-kill")
    assert trial.gap_s is not None, "the VM never answered again"
    assert trial.gap_s <= 2.0, f"gap {trial.gap_s} s"
    assert trial.dual_active_s == 0.0, trial.dual_active_by_router
    assert trial.forwarders
    assert trial.node not in trial.forwarders  # the old node forwarded nothing more


def test_cutting_the_node_brings_the_floating_ips_back(lab: Lab) -> None:
    trial = _trial(lab, "node-cut")
    assert trial.gap_s is not None, "the VM never answered again"
    assert trial.gap_s <= 4.0, f"gap {trial.gap_s} s"
    assert trial.dual_active_s == 0.0, trial.dual_active_by_router


def test_a_frozen_node_never_forwards_beside_its_successor(lab: Lab) -> None:
    trial = _trial(lab, "node-freeze")
    assert trial.gap_s is not None, "the VM never answered again"
    assert trial.dual_active_s == 0.0, trial.dual_active_by_router
    other = next(h for h in lab.plan.deployment.hosts_of("l3-agent") if h != trial.node)
    assert other in trial.forwarders  # the router really forwarded again, on the other node


def test_losing_etcds_quorum_stops_no_router_and_moves_nothing(lab: Lab) -> None:
    # Two of three etcd members killed for 30 s: every node agent keeps its open gates on the controllers'
    # failsafe confirmations (none of them reaches etcd either).
    trial = failover.run_trial(lab.plan, INVENTORY, "etcd-quorum", "hastack")
    assert trial.gap_s is not None, "the VM stopped answering for the whole outage"
    assert trial.gap_s <= 0.5, f"gap {trial.gap_s} s while etcd had no quorum"
    assert trial.gap_after_heal_s is not None
    assert trial.gap_after_heal_s <= 0.5, f"gap {trial.gap_after_heal_s} s after etcd came back"
    assert trial.moved == 0, f"{trial.moved} routers moved because etcd was lost"
    assert trial.dual_active_s == 0.0, trial.dual_active_by_router


def test_a_node_cut_off_from_etcd_alone_fails_over_and_nothing_goes_dark_after_the_heal(lab: Lab) -> None:
    # The controllers reach etcd: they refuse the node's failsafe rounds, so it fences as before.
    trial = _trial(lab, "etcd-partition")
    assert trial.gap_s is not None, "the VM never answered again"
    assert trial.gap_s <= 3.0, f"gap {trial.gap_s} s"
    assert trial.gap_after_heal_s is not None, "the VM went dark after the heal and never came back"
    assert trial.gap_after_heal_s <= 0.5, f"a second outage of {trial.gap_after_heal_s} s after the heal"
    assert trial.dual_active_s == 0.0, trial.dual_active_by_router
    assert trial.dual_forwarding_s == 0.0


def _leader(lab: Lab) -> str:
    return str(ctl(lab.plan, "status")["host"])


def test_killing_the_leader_mid_failover_still_completes_it(lab: Lab) -> None:
    failover.wait_healthy(lab.plan, INVENTORY)
    leader = _leader(lab)
    placed = failover.hosting(lab.plan, INVENTORY)
    node = max(sorted(placed), key=lambda h: len(placed[h]))
    stranded = set(placed[node])
    try:
        fail(lab.plan, "kill", f"l3-agent:{node}")
        fail(lab.plan, "kill", f"hastack-controller:{leader}")  # its lease goes on: a new leader waits
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            placed = failover.hosting(lab.plan, INVENTORY)
            if not placed[node] and stranded <= {r for rs in placed.values() for r in rs}:
                break
            time.sleep(0.25)
        new_leader = _leader(lab)
    finally:
        heal(lab.plan)  # a failure above must not leave the next tests a dead L3 agent
    assert placed[node] == [], f"{node} still hosts {placed[node]}"
    assert stranded <= {r for rs in placed.values() for r in rs}
    assert new_leader != leader or any("restarted hastack-controller" in line for line in _supervisor_log())


def _supervisor_log() -> list[str]:
    log = Path(LAB_ROOT) / "supervisor.log"
    return log.read_text().splitlines() if log.exists() else []


def test_a_killed_node_agent_is_restarted_and_its_routers_move_on_its_silence(lab: Lab) -> None:
    failover.wait_healthy(lab.plan, INVENTORY)
    before = failover.hosting(lab.plan, INVENTORY)
    node = max(sorted(before), key=lambda h: len(before[h]))
    (old,) = faults.service_records(LabState.load(), "hastack-agent", node)
    agent_log = Path(LAB_ROOT) / node / "log" / "hastack-agent.log"
    logged_before = len(agent_log.read_text().splitlines())
    fail(lab.plan, "kill", f"hastack-agent:{node}")
    deadline = time.monotonic() + 10
    new = None
    while time.monotonic() < deadline:
        new = runtime.running(LabState.load(), "hastack-agent", node)
        if new is not None and new.pid != old.pid:
            break
        time.sleep(0.1)
    assert new is not None, "the supervisor did not restart the node agent"
    assert new.pid != old.pid, "the supervisor did not restart the node agent"
    assert procs.is_alive(new)
    time.sleep(3)
    after = failover.hosting(lab.plan, INVENTORY)
    kept = any("kept the lease" in line for line in agent_log.read_text().splitlines()[logged_before:])
    heal(lab.plan)  # drops the kill's record; the supervisor already undid it
    assert sorted(r for rs in after.values() for r in rs) == sorted(r for rs in before.values() for r in rs)
    if grant_timing(lab.plan.deployment) is not None:
        # With grants on, the node agent is its node's liveness: its rounds stopped with it, its gates ran
        # out 200 ms after their last refresh, and a majority promised: its routers moved (restarting
        # takes 0.8-1 s here).
        assert after[node] == [], f"{node} still hosts {after[node]} after its node agent was killed"
    elif kept:
        # Without grants, the promise holds when the restart beats the lease (1 s here; the lease expires
        # 0.8-1.5 s after the kill): the new agent says whether it kept it.
        assert after == before, "the restarted agent kept its lease, yet routers moved"


def test_drain_takes_a_controller_out_of_rotation_with_no_failed_request(lab: Lab) -> None:
    probe = Probe(
        lab.plan,
        "cmp1",
        "keystone",
        "--url",
        "http://10.240.0.100:5000/v3",
        "--seconds",
        "9",
        "--interval",
        "0.05",
        password=PASSWORD,
    )
    time.sleep(2)
    ctl(lab.plan, "drain", "ctl1")
    time.sleep(3)
    served_while_drained = _haproxy_status(lab, "ctl1")
    ctl(lab.plan, "enable", "ctl1")
    samples = probe.samples()
    time.sleep(1)
    assert served_while_drained
    assert all(s.startswith("DRAIN") for s in served_while_drained)
    assert all(not s.startswith("DRAIN") for s in _haproxy_status(lab, "ctl1"))
    assert len(samples) > 100
    assert failures(samples) == []


def _haproxy_status(lab: Lab, server: str) -> list[str]:
    """The status of `server` in the keystone backend of every HAProxy, read through the runtime API from a
    controller host (the root namespace has no route into the lab)."""
    out = []
    for host in lab.plan.deployment.hosts_of("haproxy"):
        script = (
            "import json, pathlib; from hastack.backends.haproxy import HAProxyRuntime as H; "
            "from hastack.pki import Layout; from hastack.pki.contexts import client_context; "
            f"f = Layout(pathlib.Path('{lab.plan.deployment.inventory.paths.pki_dir}')); "
            "tls = client_context(f.ca, (f.client_cert, f.client_key)); "
            f"lb = H('{lab.plan.host(host).address}', {RUNTIME_PORT}, tls=tls); "
            "print(json.dumps([r['status'] for r in lb.stats() "
            f"if r['svname'] == '{server}' and r['pxname'] == 'keystone']))"
        )
        argv = system.in_netns(lab.plan.host("ctl2").netns, [sys.executable, "-c", script])
        out += json.loads(system.run(argv).stdout)
    return out


def test_a_standby_takes_over_within_2_s_when_the_leader_freezes(lab: Lab) -> None:
    failover.wait_healthy(lab.plan, INVENTORY)
    leader = _leader(lab)
    logged_before = len(_supervisor_log())
    frozen_at = time.monotonic()
    fail(lab.plan, "freeze", f"hastack-controller:{leader}")
    takeover = None
    while time.monotonic() - frozen_at < 10:
        status = ctl(lab.plan, "status")
        if status["leader"] and status["host"] != leader:
            # The new term began leader_for_s before this answer: that is when it took over.
            takeover = time.monotonic() - frozen_at - status["leader_for_s"]
            break
        time.sleep(0.1)
    time.sleep(2.5)  # until WatchdogSec (2 s after the freeze) has passed, and the supervisor's next look
    logged = _supervisor_log()[logged_before:]
    watchdog = [line for line in logged if f"watchdog: hastack-controller on {leader}" in line]
    heal(lab.plan)
    assert takeover is not None, "no standby took over"
    assert takeover <= 2.0, f"a standby took over {takeover:.2f} s after the leader froze"
    assert watchdog, "the supervisor's watchdog did not act on the frozen controller"
