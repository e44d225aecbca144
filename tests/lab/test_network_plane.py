"""The lab's network plane: VMs behind virtual routers, reachable on floating IPs, routers that move."""

from __future__ import annotations

import time
from typing import Any

from hastack.agent.gate import Gates
from hastack.lab import dataplane, realise, system
from hastack.lab.hadaemons import ctl
from hastack.lab.l3agent import router_netns
from hastack.lab.state import LabState, locked
from hastack.lab.topology import NetworkPlan, network_plan
from tests.lab.conftest import Lab
from tests.lab.helpers import Probe, fail, heal


def _net(lab: Lab) -> NetworkPlan:
    return network_plan(lab.plan.deployment)


def _hosting(lab: Lab) -> dict[str, str]:
    shown = realise.routerctl(lab.plan, LabState.load(), "show")
    return {r: host for host, routers in shown["routers_by_agent"].items() for r in routers}


def _ping(lab: Lab, target: str, seconds: float, interval: float = 0.02) -> Probe:
    return Probe(
        lab.plan, "client", "ping", "--target", target, "--seconds", str(seconds), "--interval", str(interval)
    )


def _answered_after(samples: list[dict[str, Any]], t: float) -> list[dict[str, Any]]:
    return [s for s in samples if s["t"] >= t and s["ok"]]


def test_every_vm_answers_ping_on_its_floating_ip(lab: Lab) -> None:
    n = _net(lab)
    assert len(n.vms) == 54
    silent = [vm.name for vm in n.vms if not dataplane.is_reachable(n, vm)]
    assert silent == []
    # Through the router (one hop), not from the router itself: the DNAT reaches the VM.
    out = system.run(system.in_netns("hs-client", ["ping", "-c", "1", "-W", "1", n.vms[0].floating])).stdout
    assert "ttl=63" in out


def test_moving_a_router_through_the_network_service_restores_ping_within_1s(lab: Lab) -> None:
    n = _net(lab)
    vm = n.vms[0]
    source = _hosting(lab)[vm.router]
    target = next(h for h in lab.plan.deployment.hosts_of("l3-agent") if h != source)
    probe = _ping(lab, vm.floating, seconds=6)
    time.sleep(1.5)
    moved_at = time.time()
    with locked():
        realise.routerctl(lab.plan, LabState.load(), "move", vm.router, target)
    samples = probe.samples()
    lost_after = [s for s in samples if s["t"] >= moved_at and not s["ok"]]
    back = _answered_after(samples, max((s["t"] for s in lost_after), default=moved_at))
    assert back, "ping did not come back after the move"
    assert back[0]["t"] - moved_at <= 1.0, f"ping came back {back[0]['t'] - moved_at:.2f} s after the move"
    assert router_netns(target, vm.router) in system.netns_list()
    # The source keeps it as a standby (lab.standby_routers), behind its shut gate.
    assert not Gates().is_open(router_netns(source, vm.router))


def test_under_policy_neutron_a_dead_l3_agents_routers_keep_forwarding(lab: Lab) -> None:
    """Neutron's semantics, which the `neutron` anchor policy keeps: nothing fences a dead agent's routers.
    (Under `hastack` the node agent shuts and removes them: tests/lab/test_failover.py.)"""
    ctl(lab.plan, "policy", "neutron")
    try:
        time.sleep(1.5)  # the node agents take up the policy at their next renewal
        n = _net(lab)
        vm = n.vms[1]
        host = _hosting(lab)[vm.router]
        fail(lab.plan, "kill", f"l3-agent:{host}")
        samples = _ping(lab, vm.floating, seconds=3).samples()
    finally:
        ctl(lab.plan, "policy", "hastack")
        heal(lab.plan)
    assert len(samples) > 100
    assert all(s["ok"] for s in samples), "a router stopped forwarding when its L3 agent died"


def test_cutting_a_network_node_stops_its_routers_forwarding(lab: Lab) -> None:
    n = _net(lab)
    vm = n.vms[2]
    host = _hosting(lab)[vm.router]
    assert dataplane.is_reachable(n, vm)
    fail(lab.plan, "cut", host)
    try:
        assert not dataplane.is_reachable(n, vm, timeout_s=1.0)
    finally:
        heal(lab.plan, host)
    system.poll("the VM to answer again after heal", lambda: dataplane.is_reachable(n, vm, 0.5), timeout=15)
