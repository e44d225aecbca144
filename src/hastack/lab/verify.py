"""`hastack lab verify`: the lab serves as a cloud operator expects, checked with the real clients."""

from __future__ import annotations

from dataclasses import dataclass

from hastack.lab import galera, keystone, loadbalancer, rabbitmq, realise, system
from hastack.lab.plan import LabPlan


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def verify(lab: LabPlan) -> list[Check]:
    dep = lab.deployment
    checks = []
    if dep.is_deployed("etcd"):
        n = len(dep.hosts_of("etcd"))
        ok = realise.is_etcd_healthy(lab)
        checks.append(Check("etcd", ok, f"{n} members healthy" if ok else "not every member is healthy"))
    if dep.is_deployed("database"):
        want = len(dep.hosts_of("database"))
        sizes = {h: galera.status(lab, h).get("wsrep_cluster_size", "down") for h in dep.hosts_of("database")}
        ok = all(size == str(want) for size in sizes.values())
        checks.append(Check("galera", ok, "cluster size " + ", ".join(f"{h}={s}" for h, s in sizes.items())))
    if dep.is_deployed("rabbitmq"):
        hosts = dep.hosts_of("rabbitmq")
        nodes = rabbitmq.running_nodes(lab, hosts[0])
        checks.append(Check("rabbitmq", len(nodes) == len(hosts), f"{len(nodes)} running nodes"))
    if dep.inventory.vips and dep.is_deployed("keepalived"):
        holders = loadbalancer.vip_holders(lab)
        ok = all(len(h) == 1 for h in holders.values())
        checks.append(
            Check("vip", ok, ", ".join(f"{v} on {'/'.join(h) or 'no host'}" for v, h in holders.items()))
        )
    if dep.is_deployed("keystone"):
        try:
            users = keystone.openstack_cli(
                lab, dep.hosts[-1].name, "user", "list", "-f", "value", "-c", "Name"
            )
            ok, detail = "admin" in users.split(), "openstack user list through the VIP lists admin"
        except system.LabError as e:
            ok, detail = False, str(e)
        checks.append(Check("keystone", ok, detail))
    return checks
