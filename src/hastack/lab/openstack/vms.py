"""The lab's VMs under profile `openstack`: namespaces plugged into their compute host's `br-int` as Nova
would plug them (a port whose external_ids carry the Neutron port's id and MAC), addressed by DHCP.

Neutron's OVS agent sees the port, tags it with the network's VLAN and wires it; each VM runs the real
ISC `dhclient` (kept in the foreground and recorded like every lab daemon, so it renews and is stopped by
PID) with a script of ours that configures only the VM's interface: the default one would rewrite the
machine's /etc/resolv.conf.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hastack.lab import dataplane, procs, runtime, system
from hastack.lab.openstack import ovs
from hastack.lab.plan import LAB_INVENTORY, LAB_ROOT, LabPlan
from hastack.lab.state import LabState
from hastack.lab.system import in_netns, run
from hastack.lab.topology import NetworkPlan, Vm

DHCLIENT_SCRIPT = """#!/bin/sh
# dhclient's script for a lab VM: the interface only, never the machine's /etc/resolv.conf.
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    [ -n "$new_interface_mtu" ] && ip link set dev "$interface" mtu "$new_interface_mtu"
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done
    ;;
esac
exit 0
"""
DHCP_TIMEOUT = 120.0


def workload(lab: LabPlan, state: LabState) -> dict[str, Any]:
    """Ensure the Neutron resources (resources.py init, from the first controller): ports and routers."""
    host = lab.host(lab.deployment.hosts_of("neutron-server")[0])
    argv = [sys.executable, "-m", "hastack.lab.openstack.resources", LAB_INVENTORY, "init"]
    answer: dict[str, Any] = json.loads(run(in_netns(host.netns, argv), timeout=600).stdout)
    return answer


def _vm_dir(vm: Vm) -> Path:
    return Path(LAB_ROOT) / "vms" / vm.name


def ensure_vms(
    lab: LabPlan, n: NetworkPlan, state: LabState, ports: dict[str, dict[str, str]], progress: system.Progress
) -> None:
    if not n.vms:
        return
    progress(f"{len(n.vms)} VMs plugged into br-int of {len({vm.host for vm in n.vms})} compute hosts")
    script = Path(LAB_ROOT) / "dhclient-script"
    script.write_text(DHCLIENT_SCRIPT)
    script.chmod(0o755)
    by_host: dict[str, list[str]] = {}
    for vm in n.vms:
        _plug(lab, state, vm, ports[vm.name]["mac"])
        by_host.setdefault(vm.host, []).extend(_ovs_port(vm, ports[vm.name]))
    for host, commands in by_host.items():
        ovs.vsctl(lab, host, *commands)  # one ovs-vsctl run per host for all its VMs
    for vm in n.vms:
        _dhclient(state, vm, script)
    progress(f"waiting for {len(n.vms)} VMs to get their addresses by DHCP")
    system.poll(
        "every VM to get its address by DHCP",
        lambda: all(has_address(vm) for vm in n.vms),
        timeout=DHCP_TIMEOUT,
        interval=0.5,
    )


def add_vm(lab: LabPlan, state: LabState, vm: Vm, port: dict[str, str]) -> None:
    """One more VM on a Neutron port made for it (`port`: its id and MAC): plugged, then its dhclient."""
    script = Path(LAB_ROOT) / "dhclient-script"
    _plug(lab, state, vm, port["mac"])
    ovs.vsctl(lab, vm.host, *_ovs_port(vm, port))
    _dhclient(state, vm, script)


def _plug(lab: LabPlan, state: LabState, vm: Vm, mac: str) -> None:
    ns, host_ns, port = dataplane.vm_netns(vm), lab.host(vm.host).netns, f"t{vm.name}"
    state.record_namespace(ns)
    system.ensure_netns(ns)
    if not system.link_exists(host_ns, port):
        dataplane.batch(
            "ip", host_ns, [f"link add {port} type veth peer name eth0 netns {ns}", f"link set {port} up"]
        )
        dataplane.batch("ip", ns, [f"link set eth0 address {mac}", "link set eth0 up"])


def _ovs_port(vm: Vm, port: dict[str, str]) -> list[str]:
    name = f"t{vm.name}"
    return [
        "--",
        "--may-exist",
        "add-port",
        "br-int",
        name,
        "--",
        "set",
        "Interface",
        name,
        f"external_ids:iface-id={port['port']}",
        f"external_ids:attached-mac={port['mac']}",
        "external_ids:iface-status=active",
        f"external_ids:vm-uuid=hastack-lab-{vm.name}",
    ]


def _dhclient(state: LabState, vm: Vm, script: Path) -> None:
    if runtime.running(state, "dhclient", vm.name) is not None:
        return
    d = _vm_dir(vm)
    d.mkdir(parents=True, exist_ok=True)
    argv = (
        "dhclient",
        "-d",
        "-sf",
        str(script),
        "-pf",
        str(d / "dhclient.pid"),
        "-lf",
        str(d / "leases"),
        "eth0",
    )
    rec = procs.spawn("dhclient", vm.name, dataplane.vm_netns(vm), argv, d / "dhclient.log")
    runtime.adopt(state, rec)


def has_address(vm: Vm) -> bool:
    """Whether the VM's interface has the address the plan gives it (Neutron's port holds that one)."""
    shown = run(in_netns(dataplane.vm_netns(vm), ["ip", "-json", "addr", "show", "dev", "eth0"]), check=False)
    if shown.returncode != 0:
        return False
    have = {
        f"{a['local']}/{a['prefixlen']}"
        for link in json.loads(shown.stdout)
        for a in link.get("addr_info", [])
    }
    return vm.address in have
