"""What the lab builds for a deployment, as data (pure): namespaces, links, addresses, daemons.

Topology first, realisation second (`realise.py`): the plan is computed whole before anything changes, and
the realiser records every namespace, link and process it makes so that teardown removes exactly those.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

from hastack.model import Deployment
from hastack.model.checks import resolve
from hastack.model.endpoints import etcd_client_url
from hastack.model.inventory import NetworkService
from hastack.store.connect import client_tls

LAB_ROOT = "/var/lib/hastack-lab"
# The inventory as the lab runs it (its paths under LAB_ROOT), written by `lab up`: what the lab's processes
# and `hastack ctl` read, so that they find the lab's certificates and directories.
LAB_INVENTORY = f"{LAB_ROOT}/inventory.yaml"
PREFIX = "hs-"


@dataclass(frozen=True)
class LabHost:
    name: str
    netns: str
    address: str
    prefixlen: int
    interface: str
    switch_port: str


@dataclass(frozen=True)
class Daemon:
    """A real daemon the lab starts inside a host's namespace, with the config `hastack render` wrote."""

    name: str
    host: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class LabPlan:
    deployment: Deployment
    switch_netns: str
    bridge: str
    hosts: tuple[LabHost, ...]
    daemons: tuple[Daemon, ...]

    @property
    def ranges(self) -> tuple[IPv4Network, ...]:
        """Every address range the lab puts on its interfaces: none may overlap a root-namespace route."""
        inv = self.deployment.inventory
        return (*inv.networks.values(), inv.lab.external_cidr, inv.lab.tenant_cidr)

    def host(self, name: str) -> LabHost:
        return next(h for h in self.hosts if h.name == name)


def lab_deployment(dep: Deployment) -> Deployment:
    """The deployment with its paths moved under the lab's own directory, one per host."""
    inv = dep.inventory
    paths = inv.paths.model_copy(
        update={
            "state_dir": f"{LAB_ROOT}/{{host}}/state",
            "run_dir": f"{LAB_ROOT}/{{host}}/run",
            "config_dir": f"{LAB_ROOT}/{{host}}/etc",
            "inventory": LAB_INVENTORY,
            "pki_dir": f"{LAB_ROOT}/pki",
        }
    )
    # The daemons drive the network service of the lab's profile: real Neutron, or the lab's own.
    service = NetworkService(backend="neutron" if inv.lab.profile == "openstack" else "lab")
    return resolve(inv.model_copy(update={"paths": paths, "network_service": service}))


def plan(dep: Deployment) -> LabPlan:
    dep = lab_deployment(dep)
    hosts = []
    for i, h in enumerate(dep.hosts):
        net = next(n for n in dep.inventory.networks.values() if h.address in n)
        # Interface names are limited to 15 characters: the switch side is named by index.
        hosts.append(
            LabHost(h.name, f"{PREFIX}{h.name}", str(h.address), net.prefixlen, h.interface, f"hsp{i}")
        )
    daemons = tuple(
        Daemon("etcd", h, ("/usr/bin/etcd", "--config-file", f"{LAB_ROOT}/{h}/etc/etcd.conf.yml"))
        for h in dep.hosts_of("etcd")
    )
    return LabPlan(dep, f"{PREFIX}switch", "br-mgmt", tuple(hosts), daemons)


def etcdctl(lab: LabPlan, *args: str) -> list[str]:
    """`etcdctl` with every member's client URL and, under TLS, the deployment's client certificate."""
    dep = lab.deployment
    argv = ["etcdctl", "--endpoints", ",".join(etcd_client_url(dep, h) for h in dep.hosts_of("etcd"))]
    tls = client_tls(dep)
    if tls is not None:
        argv += ["--cacert", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key)]
    return [*argv, *args]
