"""The OpenStack lab end to end: real Neutron agents alive through the VIP, VMs addressed by DHCP and
reachable on floating IPs, hastack moving routers through Neutron's API when an L3 agent dies, DHCP with
one of two agents stopped, and a frozen network node that never forwards beside its successor."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from hastack.bench import failover, lablink
from hastack.lab import dataplane, system
from hastack.lab.keystone import openstack_cli
from hastack.lab.openstack import vms
from hastack.lab.plan import LAB_ROOT
from hastack.lab.state import LabState
from hastack.lab.topology import Vm, network_plan
from tests.lab.conftest import Lab
from tests.lab_openstack.conftest import OPENSTACK_INVENTORY, Neutron

# The first test here pays for bringing the OpenStack lab up (~5 min on 2 cores, Neutron's API slower on
# a loaded machine): more than the suite's 300 s per test.
pytestmark = pytest.mark.timeout(900)

INVENTORY = str(OPENSTACK_INVENTORY)


def test_every_neutron_agent_is_alive_through_the_vip(openstack_lab: Lab) -> None:
    p = openstack_lab.plan
    listed = json.loads(openstack_cli(p, "ctl1", "network", "agent", "list", "-f", "json"))
    agents = sorted((a["Agent Type"], a["Host"], a["Alive"]) for a in listed)
    assert agents == sorted(
        [("L3 agent", h, True) for h in ("net1", "net2")]
        + [("DHCP agent", h, True) for h in ("net1", "net2")]
        + [("Open vSwitch agent", h, True) for h in ("net1", "net2", "cmp1", "cmp2")]
    )


def test_vms_got_their_addresses_by_dhcp_and_answer_on_floating_ips(openstack_lab: Lab) -> None:
    n = network_plan(openstack_lab.plan.deployment)
    assert all(vms.has_address(vm) for vm in n.vms)
    leases = [Path(LAB_ROOT, "vms", vm.name, "leases").read_text() for vm in n.vms]
    assert all("fixed-address" in lease for lease in leases)  # dhclient's own record of the lease
    system.poll("every VM to answer", lambda: all(dataplane.reachability(n, 1.0).values()), 120, 1.0)


@pytest.mark.timeout(900)
def test_killing_the_l3_agent_moves_its_routers_through_neutron(openstack_lab: Lab, neutron: Neutron) -> None:
    p = openstack_lab.plan
    n = network_plan(p.deployment)
    placed = neutron.backend.routers_by_agent()
    node = max(sorted(placed), key=lambda h: len(placed[h]))
    ids = {r.id: rid for r in n.routers if (rid := _id(neutron, r.id)) is not None}
    vm = next(v for v in n.vms if ids[v.router] in placed[node])
    lablink.inject(p, ("kill", f"l3-agent:{node}"))
    try:
        # Not restarted: the VM must come back on the other node. Neutron rebuilds the routers there and
        # its OVS agent wires their ports, which takes minutes on this 2-core lab.
        system.poll(f"{vm.name} to answer again", lambda: dataplane.is_reachable(n, vm, 1.0), 480, 1.0)
        # Neutron's own scheduler was told, through its API, by the controller's background calls
        # (which may still be going on for the node's other routers).
        system.poll(
            f"Neutron to give {node} no router",
            lambda: neutron.backend.routers_by_agent()[node] == [],
            180,
            2.0,
        )
        # Its add to the other node may still be in flight (CI once read it unbound in Neutron here, the
        # VM already answering): the record must settle there, not merely be gone from the node.
        others = [h for h in p.deployment.hosts_of("l3-agent") if h != node]
        system.poll(
            f"Neutron to host {vm.router} on {' or '.join(others)}",
            lambda: any(ids[vm.router] in neutron.backend.routers_by_agent().get(h, []) for h in others),
            120,
            2.0,
        )
    finally:
        lablink.heal(p)


@pytest.mark.timeout(900)
def test_a_frozen_network_node_never_forwards_beside_its_successor(openstack_lab: Lab) -> None:
    trial = failover.run_trial(openstack_lab.plan, INVENTORY, "node-freeze", "hastack")
    # The gates of both nodes, sampled every 10 ms: never open for one router on two nodes at once.
    assert trial.dual_active_s == 0.0, trial.dual_active_by_router
    window = failover.trial_seconds("hastack", openstack=True)
    assert trial.pings > 0.9 * window / failover.INTERVAL_S  # the trial did run its whole window
    assert trial.gap_s is not None, "the VM never answered again"  # routers build in 20-30 s now


def _id(neutron: Neutron, name: str) -> str | None:
    router = neutron.run(lambda: neutron.conn.network.find_router(name))
    return None if router is None else str(router.id)


def test_a_new_vm_gets_its_address_with_one_of_two_dhcp_agents_stopped(
    openstack_lab: Lab, neutron: Neutron
) -> None:
    p = openstack_lab.plan
    n = network_plan(p.deployment)
    router = n.routers[0]
    net = neutron.run(lambda: neutron.conn.network.find_network(f"net-{router.id}"))
    assert neutron.backend.dhcp_agents_by_network([net.id]) == {net.id: ["net1", "net2"]}
    stopped = _dhcp_of(LabState.load(), "net1", net.id)  # the agent and its dnsmasq for this network
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    vm = Vm("vm9000", "cmp1", 0, f"{router.tenant_cidr.rsplit('.', 1)[0]}.200/24", "", "", router.id)
    port = neutron.run(
        lambda: neutron.conn.network.create_port(
            name=vm.name,
            network_id=net.id,
            fixed_ips=[{"ip_address": vm.address.split("/")[0]}],
            device_owner="compute:nova",
            binding_host_id=vm.host,
        )
    )
    try:
        vms.add_vm(p, LabState.load(), vm, {"port": port.id, "mac": port.mac_address})
        system.poll("the new VM's address by DHCP", lambda: vms.has_address(vm), 90, 0.5)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        neutron.run(lambda: neutron.conn.network.delete_port(port.id))


def _dhcp_of(state: LabState, host: str, network: str) -> list[int]:
    agent = next(r.pid for r in state.processes if (r.name, r.host) == ("neutron-dhcp-agent", host))
    pidfile = Path(LAB_ROOT, host, "state", "neutron", "dhcp", network, "pid")
    return [agent, int(pidfile.read_text())]
