"""Rules that relate several inventory fields. Pure: an Inventory in, a list of Problems out.

Each problem carries the path of the field to blame, so the loader can point at the file's line.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from hastack.catalog import CATALOG, component, component_names
from hastack.model.deployment import Deployment, eligible_hosts, place
from hastack.model.inventory import Inventory, Timing

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str


def check(inv: Inventory) -> list[Problem]:
    """Every problem of the inventory; an empty list means `resolve` will succeed."""
    problems = [
        *host_problems(inv),
        *vip_problems(inv),
        *placement_problems(inv),
        *timing_problems(inv.timing),
    ]
    problems += lab_problems(inv)
    if not problems:
        dep = resolve_unchecked(inv)
        problems += role_problems(dep) + port_problems(dep)
    return problems


def resolve(inv: Inventory) -> Deployment:
    """The deployment an inventory describes; ValueError naming the first problem if it has any."""
    problems = check(inv)
    if problems:
        raise ValueError(f"{'.'.join(map(str, problems[0].path))}: {problems[0].message}")
    return resolve_unchecked(inv)


def resolve_unchecked(inv: Inventory) -> Deployment:
    placements = tuple(
        (c.name, place(inv, c, inv.components[c.name])) for c in CATALOG if c.name in inv.components
    )
    return Deployment(inventory=inv, placements=placements)


def _duplicates(values: list[object]) -> set[object]:
    return {v for v, n in Counter(values).items() if n > 1}


def host_problems(inv: Inventory) -> list[Problem]:
    problems = []
    dup_names = _duplicates([h.name for h in inv.hosts])
    dup_addrs = _duplicates([h.address for h in inv.hosts])
    seen: set[object] = set()
    for i, h in enumerate(inv.hosts):
        if h.name in dup_names and h.name in seen:
            problems.append(Problem(("hosts", i, "name"), f"duplicate host name {h.name!r}"))
        if h.address in dup_addrs and h.address in seen:
            problems.append(Problem(("hosts", i, "address"), f"duplicate host address {h.address}"))
        seen |= {h.name, h.address}
        if not any(_is_host_address(h.address, net) for net in inv.networks.values()):
            nets = ", ".join(str(n) for n in inv.networks.values())
            problems.append(
                Problem(("hosts", i, "address"), f"{h.address} is not a host address of any network ({nets})")
            )
        if len(set(h.roles)) != len(h.roles):
            problems.append(Problem(("hosts", i, "roles"), "a role is listed twice"))
    return problems


def _is_host_address(addr: IPv4Address, net: IPv4Network) -> bool:
    return addr in net and (net.prefixlen >= 31 or addr not in (net.network_address, net.broadcast_address))


def vip_problems(inv: Inventory) -> list[Problem]:
    problems = []
    host_addrs = {h.address for h in inv.hosts}
    vrids = _duplicates([v.vrid for v in inv.vips.values()])
    for name, vip in inv.vips.items():
        net = inv.networks.get(vip.network)
        if net is None:
            problems.append(
                Problem(
                    ("vips", name, "network"),
                    f"unknown network {vip.network!r} (networks: {', '.join(inv.networks)})",
                )
            )
        elif not _is_host_address(vip.address, net):
            problems.append(
                Problem(
                    ("vips", name, "address"), f"{vip.address} is outside its network {vip.network} ({net})"
                )
            )
        if vip.address in host_addrs:
            problems.append(Problem(("vips", name, "address"), f"{vip.address} is also a host's address"))
        if vip.vrid in vrids:
            problems.append(Problem(("vips", name, "vrid"), f"VRRP id {vip.vrid} is used by another VIP"))
    return problems


def placement_problems(inv: Inventory) -> list[Problem]:
    problems = []
    known = component_names()
    host_roles = {h.name: set(h.roles) for h in inv.hosts}
    for name, placement in inv.components.items():
        where: tuple[str | int, ...] = ("components", name)
        if name not in known:
            problems.append(Problem(where, f"unknown component {name!r} (see `hastack catalog`)"))
            continue
        comp = component(name)
        roles = "/".join(comp.roles)
        if placement.hosts is not None:
            for i, host in enumerate(placement.hosts):
                if host not in host_roles:
                    problems.append(Problem((*where, "hosts", i), f"unknown host {host!r}"))
                elif not host_roles[host] & set(comp.roles):
                    problems.append(
                        Problem(
                            (*where, "hosts", i), f"host {host!r} has no {roles} role, which {name} needs"
                        )
                    )
            if len(set(placement.hosts)) != len(placement.hosts):
                problems.append(Problem((*where, "hosts"), "a host is listed twice"))
            if placement.replicas is not None and placement.replicas != len(placement.hosts):
                problems.append(
                    Problem(
                        (*where, "replicas"),
                        f"replicas is {placement.replicas} but {len(placement.hosts)} hosts are listed",
                    )
                )
            continue
        eligible = eligible_hosts(inv, comp)
        wanted = placement.replicas if placement.replicas is not None else max(len(eligible), 1)
        if wanted > len(eligible):
            problems.append(
                Problem(
                    (*where, "replicas"),
                    f"{wanted} replicas but only {len(eligible)} host(s) with the {roles} role",
                )
            )
    return problems


def timing_problems(t: Timing) -> list[Problem]:
    """The rules that tie the timing knobs together (see DESIGN-fencing.md, 'The timing rule')."""
    ttl_ms = t.lease_ttl_s * 1000
    beat = 3 * t.heartbeat_interval_ms + t.fence_margin_ms
    min_margin = max(50, math.ceil(ttl_ms / 10))
    centis = t.vrrp_advert_interval_s * 100
    # (breached, field to blame, what to say)
    rules = [
        (
            beat > ttl_ms,
            "heartbeat_interval_ms",
            f"heartbeat_interval_ms x 3 + fence_margin_ms = {beat} ms "
            f"exceeds lease_ttl_s ({ttl_ms} ms): lower the heartbeat or raise lease_ttl_s",
        ),
        (
            t.fence_margin_ms < min_margin,
            "fence_margin_ms",
            f"fence_margin_ms must be at least {min_margin} ms "
            "(10% of lease_ttl_s, at least 50 ms) to cover clock drift and scheduling",
        ),
        (
            t.etcd_election_timeout_ms < 5 * t.etcd_heartbeat_ms,
            "etcd_election_timeout_ms",
            f"etcd_election_timeout_ms must be at least 5 x etcd_heartbeat_ms ({5 * t.etcd_heartbeat_ms} ms);"
            " "
            "etcd refuses less",
        ),
        (
            ttl_ms < 1.5 * t.etcd_election_timeout_ms,
            "lease_ttl_s",
            f"lease_ttl_s ({ttl_ms} ms) is below 1.5 x "
            "etcd_election_timeout_ms; etcd would silently lengthen the lease",
        ),
        (
            t.api_response_timeout_ms <= t.health_check_timeout_ms,
            "api_response_timeout_ms",
            f"api_response_timeout_ms must exceed health_check_timeout_ms ({t.health_check_timeout_ms} ms):"
            " a replica that answers its health check in time must get as long for a request",
        ),
        (
            t.token_issue_timeout_ms < t.api_response_timeout_ms,
            "token_issue_timeout_ms",
            "token_issue_timeout_ms must be at least api_response_timeout_ms "
            f"({t.api_response_timeout_ms} ms): a token costs a password check on top of an ordinary request",
        ),
        (
            t.network_api_timeout_ms <= t.health_check_timeout_ms,
            "network_api_timeout_ms",
            f"network_api_timeout_ms must exceed health_check_timeout_ms ({t.health_check_timeout_ms} ms)",
        ),
        (
            2 * t.controller_tick_ms > ttl_ms,
            "controller_tick_ms",
            "controller_tick_ms must be at most half of lease_ttl_s",
        ),
        (
            t.grant_ms > 0 and t.grant_ms - t.grant_margin_ms < 3 * t.grant_interval_ms,
            "grant_ms",
            "grant_ms - grant_margin_ms must be at least 3 x grant_interval_ms "
            f"({3 * t.grant_interval_ms} ms): a gate must outlive two lost rounds",
        ),
        (
            t.grant_ms > 0 and t.grant_ms + t.grant_margin_ms >= ttl_ms,
            "grant_ms",
            f"grant_ms + grant_margin_ms must stay below lease_ttl_s ({ttl_ms} ms), or grants gain nothing",
        ),
        (
            round(centis) != round(centis, 6),
            "vrrp_advert_interval_s",
            "VRRPv3 counts in hundredths of a second: use a multiple of 0.01",
        ),
        (
            t.galera_keepalive_period_ms >= t.galera_suspect_timeout_ms,
            "galera_keepalive_period_ms",
            "galera_keepalive_period_ms must be below galera_suspect_timeout_ms",
        ),
        (
            2 * t.galera_inactive_check_period_ms > t.galera_suspect_timeout_ms,
            "galera_inactive_check_period_ms",
            "galera_inactive_check_period_ms must be at most half of galera_suspect_timeout_ms",
        ),
        (
            t.galera_suspect_timeout_ms > t.galera_inactive_timeout_ms,
            "galera_suspect_timeout_ms",
            "galera_suspect_timeout_ms must not exceed galera_inactive_timeout_ms",
        ),
    ]
    return [Problem(("timing", field), message) for breached, field, message in rules if breached]


def lab_problems(inv: Inventory) -> list[Problem]:
    lab, problems = inv.lab, []
    ranges = {"external_cidr": lab.external_cidr, "tenant_cidr": lab.tenant_cidr}
    for field, net in ranges.items():
        for name, other in inv.networks.items():
            if net.overlaps(other):
                problems.append(Problem(("lab", field), f"{net} overlaps network {name} ({other})"))
    if lab.external_cidr.overlaps(lab.tenant_cidr):
        problems.append(Problem(("lab", "tenant_cidr"), "tenant_cidr overlaps external_cidr"))
    if lab.tenant_prefix < lab.tenant_cidr.prefixlen:
        problems.append(Problem(("lab", "tenant_prefix"), f"/{lab.tenant_prefix} is larger than tenant_cidr"))
    elif lab.tenant_networks > 2 ** (lab.tenant_prefix - lab.tenant_cidr.prefixlen):
        problems.append(
            Problem(
                ("lab", "tenant_networks"),
                f"{lab.tenant_networks} networks of /{lab.tenant_prefix} do not fit in {lab.tenant_cidr}",
            )
        )
    if lab.routers > lab.tenant_networks:
        problems.append(
            Problem(
                ("lab", "routers"),
                "each router needs a tenant network of its own: routers must not exceed tenant_networks",
            )
        )
    if lab.vms and not lab.routers:
        problems.append(Problem(("lab", "vms"), "VMs need at least one routed tenant network (lab.routers)"))
    if 10 + lab.routers + lab.vms > lab.external_cidr.num_addresses - 1:
        problems.append(
            Problem(
                ("lab", "external_cidr"),
                f"{lab.external_cidr} is too small for "
                f"{lab.routers} router gateways and {lab.vms} floating IPs",
            )
        )
    client = next(iter(inv.networks.values())).broadcast_address - 1
    if client in {h.address for h in inv.hosts} | {v.address for v in inv.vips.values()}:
        problems.append(
            Problem(
                ("lab",),
                f"the lab's client host takes {client}, the management network's last "
                "address; a host or VIP uses it",
            )
        )
    if lab.tenant_networks > 3800:
        problems.append(Problem(("lab", "tenant_networks"), "at most 3800 tenant networks (one VLAN each)"))
    return problems


def role_problems(dep: Deployment) -> list[Problem]:
    """Relations between components: what a load-balanced or VIP-holding component needs beside it."""
    problems = []
    lb_hosts = set(dep.hosts_of("haproxy"))
    for name in dep.components():
        comp = component(name)
        if comp.is_load_balanced and len(dep.hosts_of(name)) > 1 and not lb_hosts and name != "database":
            problems.append(
                Problem(
                    ("components", name),
                    f"{name} has {len(dep.hosts_of(name))} replicas "
                    "but no haproxy is deployed to balance them",
                )
            )
    if dep.is_deployed("keepalived") and set(dep.hosts_of("keepalived")) != lb_hosts:
        problems.append(
            Problem(
                ("components", "keepalived"),
                "keepalived must run on exactly the haproxy "
                "hosts: the VIP may only land where HAProxy serves it",
            )
        )
    if (lb_hosts or dep.is_deployed("keepalived")) and not dep.inventory.vips:
        problems.append(Problem(("vips",), "haproxy/keepalived are deployed but no VIP is defined"))
    if len(lb_hosts) > 1 and not dep.is_deployed("keepalived"):
        problems.append(
            Problem(
                ("components", "haproxy"),
                "several haproxy hosts need keepalived to move the VIP between them",
            )
        )
    return problems


def port_problems(dep: Deployment) -> list[Problem]:
    """Two listeners on one host must not share an address and port."""
    problems = []
    for host in dep.hosts:
        bound: dict[tuple[IPv4Address, int], str] = {}
        for blame, label, addr, port in _listeners(dep, host.name):
            other = bound.setdefault((addr, port), label)
            if other != label:
                problems.append(
                    Problem(
                        ("components", blame), f"port {port} on {host.name} ({addr}) is taken by {other} too"
                    )
                )
    return problems


def _listeners(dep: Deployment, host: str) -> list[tuple[str, str, IPv4Address, int]]:
    """(component to blame, listener label, address, port) for every socket a host's daemons open."""
    addr = dep.host(host).address
    out = [(name, name, addr, port) for name in dep.components_on(host) for port in dep.ports(name)]
    if "haproxy" in dep.components_on(host):
        for vip in dep.vip_addresses():
            out += [
                (c, f"the haproxy frontend of {c}", vip, p)
                for c in dep.load_balanced()
                if (p := dep.vip_port(c)) is not None
            ]
    return out
