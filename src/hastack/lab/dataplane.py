"""Realising the network plane: a VXLAN overlay, the client host, the VMs. (Routers are the L3 agents'.)

This machine kind's kernel has neither VLAN-filtering bridges nor 802.1Q devices, so each tenant network
is a VXLAN segment (VNI 100+i; the external network VNI 4000) over the management network, as many
OpenStack clouds run it. On every network and compute host each segment is a plain bridge `bt<vni>` with
a VXLAN device `vx<vni>` in it; static all-zero FDB entries flood to the other hosts, unicast MACs are
learned. Router and VM ports join their segment's bridge. Cutting a host's management link therefore
cuts its data plane too. Inner interfaces use MTU 1450 (VXLAN adds 50 bytes).
"""

from __future__ import annotations

import json
import subprocess

from hastack.lab import system
from hastack.lab.plan import PREFIX, LabPlan
from hastack.lab.state import LabState
from hastack.lab.system import in_netns, run
from hastack.lab.topology import CLIENT, EXTERNAL_VLAN, NetworkPlan, Vm

INNER_MTU = 1450
TRUNK_VNI = 3999  # profile openstack: one segment carries every tenant VLAN (Open vSwitch tags them)
VXLAN_PORT = 4789
# The lab L3 agent announces a router that starts serving to this MAC, not to broadcast. Every bridge pins
# it to its VXLAN port: the frame leaves its host only over the overlay, which sends it to every other host
# (the all-zero entries), and the bridge it reaches there drops it (it came in on the pinned port). Every
# bridge and VXLAN device on the way learns the router's MAC from it, and no router or VM sees it. A
# broadcast was copied to every port of the segment: a node taking over 1000 routers sent a million copies
# per round of announcements into router namespaces, on 2 cores (bench scale: 10-34 s until all answered).
ANNOUNCE_MAC = "02:68:73:61:6e:6e"


def announce_pin(uplink: str) -> str:
    """The `bridge -batch` line that pins ANNOUNCE_MAC to a bridge's uplink port. Pure."""
    return f"fdb add {ANNOUNCE_MAC} dev {uplink} master static"


def client_netns() -> str:
    return f"{PREFIX}{CLIENT}"


def vm_netns(vm: Vm) -> str:
    return f"{PREFIX}{vm.name}"


def bridge(vni: int) -> str:
    return f"bt{vni}"


def batch(tool: str, netns: str, lines: list[str]) -> None:
    """Run `lines` through one `ip -batch` / `bridge -batch` in `netns`: one process for many changes."""
    if lines:
        run([tool, "-n", netns, "-batch", "-"], timeout=120, stdin="\n".join(lines) + "\n")


def links(netns: str) -> set[str]:
    return {link["ifname"] for link in json.loads(run(["ip", "-n", netns, "-json", "link", "show"]).stdout)}


def segment_lines(vni: int, local: str, peers: list[str], existing: set[str]) -> tuple[list[str], list[str]]:
    """`ip` and `bridge` batch lines creating segment `vni` on a host whose underlay address is `local`."""
    if bridge(vni) in existing:
        return [], []
    ip = [
        f"link add {bridge(vni)} type bridge",
        f"link set {bridge(vni)} mtu {INNER_MTU} up",
        f"link add vx{vni} type vxlan id {vni} local {local} dstport {VXLAN_PORT}",
        f"link set vx{vni} master {bridge(vni)} mtu {INNER_MTU} up",
    ]
    fdb = [f"fdb append 00:00:00:00:00:00 dev vx{vni} dst {peer}" for peer in peers if peer != local]
    fdb.append(announce_pin(f"vx{vni}"))
    return ip, fdb


def _ensure_segments(netns: str, local: str, segments: dict[int, list[str]]) -> None:
    existing = links(netns)
    ip_lines: list[str] = []
    fdb_lines: list[str] = []
    for vni, peers in segments.items():
        ip, fdb = segment_lines(vni, local, peers, existing)
        ip_lines += ip
        fdb_lines += fdb
    batch("ip", netns, ip_lines)
    batch("bridge", netns, fdb_lines)


def ensure_overlay(
    lab: LabPlan, n: NetworkPlan, state: LabState, progress: system.Progress, trunk: bool = False
) -> None:
    """The tenant segments (one per lab tenant network, or with `trunk` one for all of Neutron's VLANs)
    on every network and compute host, the external segment on network nodes and the client host."""
    tenant = (TRUNK_VNI,) if trunk else n.vlans
    progress(f"overlay: {len(tenant)} tenant VXLAN segments and the external one (VNI {EXTERNAL_VLAN})")
    addr = {h: lab.host(h).address for h in n.data_hosts}
    network_hosts = [h for h in n.data_hosts if h in lab.deployment.hosts_of("l3-agent")]
    external_peers = [addr[h] for h in network_hosts] + [n.client_underlay]
    for host in n.data_hosts:
        segments = {vni: list(addr.values()) for vni in tenant}
        if host in network_hosts:
            segments[EXTERNAL_VLAN] = external_peers
        _ensure_segments(lab.host(host).netns, addr[host], segments)
    progress(f"client host on the external network: {n.client_address}")
    state.record_namespace(client_netns())
    system.ensure_netns(client_netns())
    system.ensure_veth(client_netns(), "eth0", lab.switch_netns, "hsdc", lab.bridge)
    system.ensure_address(client_netns(), "eth0", f"{n.client_underlay}/{n.underlay_prefix}")
    _ensure_segments(client_netns(), n.client_underlay, {EXTERNAL_VLAN: external_peers})
    system.ensure_address(client_netns(), bridge(EXTERNAL_VLAN), n.client_address)


def ensure_vms(lab: LabPlan, n: NetworkPlan, state: LabState, progress: system.Progress) -> None:
    if n.vms:
        progress(f"{len(n.vms)} VMs on {len({vm.host for vm in n.vms})} compute hosts")
    for vm in n.vms:
        ns, host_ns, port = vm_netns(vm), lab.host(vm.host).netns, f"t{vm.name}"
        state.record_namespace(ns)
        system.ensure_netns(ns)
        if not system.link_exists(host_ns, port):
            batch(
                "ip",
                host_ns,
                [
                    f"link add {port} mtu {INNER_MTU} type veth peer name eth0 netns {ns}",
                    f"link set {port} master {bridge(vm.vlan)} up",
                ],
            )
            batch(
                "ip",
                ns,
                [
                    f"link set eth0 mtu {INNER_MTU}",
                    f"addr add {vm.address} dev eth0",
                    "link set eth0 up",
                    f"route add default via {vm.gateway}",
                ],
            )


def _ping(vm: Vm, timeout_s: float) -> list[str]:
    return in_netns(client_netns(), ["ping", "-c", "1", "-W", f"{timeout_s:g}", "-q", vm.floating])


def is_reachable(n: NetworkPlan, vm: Vm, timeout_s: float = 1.0) -> bool:
    """Whether `vm` answers a ping on its floating IP from the client host."""
    return run(_ping(vm, timeout_s), check=False, timeout=timeout_s + 5).returncode == 0


def reachability(n: NetworkPlan, timeout_s: float = 1.0) -> dict[str, bool]:
    """Every VM's answer to one ping on its floating IP from the client host, all pinged at once."""
    argv = {vm.name: _ping(vm, timeout_s) for vm in n.vms}
    children = {
        name: subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, a in argv.items()
    }
    return {name: child.wait(timeout=timeout_s + 10) == 0 for name, child in children.items()}
