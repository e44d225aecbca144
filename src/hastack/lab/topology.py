"""The lab's network plane as data (pure): tenant networks, routers, VMs and floating IPs.

Tenant network i is VLAN 100+i on the data fabric, with a router of its own (router i) whose qr- port is
the network's gateway and whose qg- port sits on the external network (VLAN 4000). VMs go round-robin
over the routed networks and the compute hosts, each with a floating IP on the external network. The
client host, on the external network, is where pings to floating IPs come from.

External addresses: .2 the client, 10+i router i's gateway port, 10+routers+j VM j's floating IP, and
after those the gateway ports of the extra routers `hastack bench scale` adds (`scale_routers`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address, IPv4Network

from hastack.model import Deployment

EXTERNAL_VLAN = 4000
FIRST_TENANT_VLAN = 100
CLIENT = "client"
SCALE_PREFIX = "s"  # the extra routers of `bench scale` are s0000, s0001, ...
SCALE_SUBNET_PREFIX = 29


class ScaleError(ValueError):
    """The lab's address ranges cannot hold the extra routers asked for."""


@dataclass(frozen=True)
class Router:
    id: str
    vlan: int
    tenant_cidr: str
    gateway: str  # qr- address, with prefix
    qr_mac: str
    external: str  # qg- address, with prefix
    qg_mac: str
    floating: tuple[tuple[str, str], ...]  # (floating IP, fixed IP)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Router:
        data = json.loads(text)
        data["floating"] = tuple(tuple(pair) for pair in data["floating"])
        return cls(**data)


@dataclass(frozen=True)
class Vm:
    name: str
    host: str
    vlan: int
    address: str  # with prefix
    gateway: str
    floating: str
    router: str


@dataclass(frozen=True)
class NetworkPlan:
    external_cidr: IPv4Network
    client_address: str  # with prefix
    routers: tuple[Router, ...]
    vms: tuple[Vm, ...]
    data_hosts: tuple[str, ...]  # network and compute hosts: the ones on the overlay
    client_underlay: str  # the client's address on the management network (the overlay's underlay)
    underlay_prefix: int

    @property
    def vlans(self) -> tuple[int, ...]:
        return tuple(r.vlan for r in self.routers)


def mac(kind: int, index: int) -> str:
    return f"fa:16:3e:{kind:02x}:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}"


def router_id(index: int) -> str:
    return f"r{index:04d}"


def network_plan(dep: Deployment) -> NetworkPlan:
    lab = dep.inventory.lab
    ext = lab.external_cidr
    tenant_nets = list(lab.tenant_cidr.subnets(new_prefix=lab.tenant_prefix))[: lab.tenant_networks]
    computes = [h.name for h in dep.hosts if "compute" in h.roles]
    vms: list[Vm] = []
    for j in range(lab.vms if computes and lab.routers else 0):
        i = j % lab.routers
        net = tenant_nets[i]
        fixed = net.network_address + 10 + j // lab.routers
        vms.append(
            Vm(
                f"vm{j:04d}",
                computes[j % len(computes)],
                FIRST_TENANT_VLAN + i,
                f"{fixed}/{net.prefixlen}",
                str(net.network_address + 1),
                str(ext.network_address + 10 + lab.routers + j),
                router_id(i),
            )
        )
    routers = []
    for i in range(lab.routers):
        net = tenant_nets[i]
        rid = router_id(i)
        routers.append(
            Router(
                id=rid,
                vlan=FIRST_TENANT_VLAN + i,
                tenant_cidr=str(net),
                gateway=f"{net.network_address + 1}/{net.prefixlen}",
                qr_mac=mac(0, i),
                external=f"{ext.network_address + 10 + i}/{ext.prefixlen}",
                qg_mac=mac(1, i),
                floating=tuple((vm.floating, vm.address.split("/")[0]) for vm in vms if vm.router == rid),
            )
        )
    data_hosts = tuple(h.name for h in dep.hosts if {"network", "compute"} & set(h.roles))
    underlay = next(iter(dep.inventory.networks.values()))
    return NetworkPlan(
        ext,
        f"{ext.network_address + 2}/{ext.prefixlen}",
        tuple(routers),
        tuple(vms),
        data_hosts,
        str(client_underlay(underlay)),
        underlay.prefixlen,
    )


def client_underlay(management: IPv4Network) -> IPv4Address:
    """The client host's management address: the network's last host address (checked to be free)."""
    return management.broadcast_address - 1


def initial_host(plan: NetworkPlan, agents: tuple[str, ...], index: int) -> str:
    """Where `lab up` schedules router `index` first: round-robin over the L3 agents."""
    return agents[index % len(agents)]


def scale_router_id(index: int) -> str:
    return f"{SCALE_PREFIX}{index:04d}"


def scale_routers(dep: Deployment, count: int) -> tuple[Router, ...]:
    """`count` extra routers for `hastack bench scale`, on top of the lab's own: no VMs; each one's qr-
    port is the gateway of a /29 of its own in the upper half of the tenant range, on the tenant
    networks' segments in turn; its qg- port takes the next free external address. Pure."""
    lab = dep.inventory.lab
    ext = lab.external_cidr
    first = ext.network_address + 10 + lab.routers + lab.vms
    room = max(0, int(ext.broadcast_address) - int(first))
    if count > room:
        raise ScaleError(
            f"lab.external_cidr {ext} has room for {room} more routers, not {count}: widen it "
            "(a /21 holds 1000 besides the lab's own)"
        )
    upper = list(lab.tenant_cidr.subnets(prefixlen_diff=1))[1]
    used = list(lab.tenant_cidr.subnets(new_prefix=lab.tenant_prefix))[: lab.tenant_networks]
    if any(net.overlaps(upper) for net in used):
        raise ScaleError(f"lab.tenant_cidr {lab.tenant_cidr}: its upper half, for extra routers, is in use")
    subnets = upper.subnets(new_prefix=SCALE_SUBNET_PREFIX)
    if count > 2 ** (SCALE_SUBNET_PREFIX - upper.prefixlen):
        raise ScaleError(f"lab.tenant_cidr {lab.tenant_cidr} is too small for {count} extra routers")
    routers = []
    for i, net in zip(range(count), subnets, strict=False):
        routers.append(
            Router(
                id=scale_router_id(i),
                # Spread over the tenant segments: one segment holding every qr- port would make each
                # broadcast on it (a gratuitous ARP at takeover) a copy per router, on 2 cores.
                vlan=FIRST_TENANT_VLAN + i % max(1, lab.routers),
                tenant_cidr=str(net),
                gateway=f"{net.network_address + 1}/{net.prefixlen}",
                qr_mac=mac(2, i),
                external=f"{first + i}/{ext.prefixlen}",
                qg_mac=mac(3, i),
                floating=(),
            )
        )
    return tuple(routers)
