"""The resolved deployment: the inventory with every component placed on concrete hosts.

Everything downstream (analysis, render, lab, controller) reads this, never the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from hastack.catalog import Component, Role, component
from hastack.model.inventory import Host, Inventory, Placement


@dataclass(frozen=True)
class Deployment:
    inventory: Inventory
    placements: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def name(self) -> str:
        return self.inventory.deployment

    @property
    def hosts(self) -> tuple[Host, ...]:
        return self.inventory.hosts

    def host(self, name: str) -> Host:
        for h in self.inventory.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def components(self) -> tuple[str, ...]:
        """Deployed components, in catalog order."""
        return tuple(name for name, _ in self.placements)

    def hosts_of(self, name: str) -> tuple[str, ...]:
        """The hosts running `name`, in inventory order; () if it is not deployed."""
        return dict(self.placements).get(name, ())

    def is_deployed(self, name: str) -> bool:
        return bool(self.hosts_of(name))

    def components_on(self, host: str) -> tuple[str, ...]:
        return tuple(name for name, hosts in self.placements if host in hosts)

    def port(self, name: str) -> int:
        """The component's main port: the inventory's override, else the catalog's first port."""
        placement = self.inventory.components.get(name)
        if placement is not None and placement.port is not None:
            return placement.port
        return component(name).ports[0]

    def ports(self, name: str) -> tuple[int, ...]:
        rest = component(name).ports[1:]
        return (self.port(name), *rest) if component(name).ports else ()

    def vip_port(self, name: str) -> int | None:
        """The frontend port on the VIPs; it follows a port override so backends and frontend agree."""
        return self.port(name) if component(name).is_load_balanced else None

    def load_balanced(self) -> tuple[str, ...]:
        """Deployed components that HAProxy fronts (only when HAProxy itself is deployed)."""
        if not self.is_deployed("haproxy"):
            return ()
        return tuple(c for c in self.components() if component(c).is_load_balanced)

    def api_replicas(self) -> dict[str, list[str]]:
        """host -> the stateless APIs HAProxy balances there: what `hastack ctl drain HOST` takes out of
        rotation. Galera is balanced too, but as one writer with backups, and is not drained."""
        served: dict[str, list[str]] = {}
        for name in self.load_balanced():
            if name != "database":
                for h in self.hosts_of(name):
                    served.setdefault(h, []).append(name)
        return served

    def vip_addresses(self) -> tuple[IPv4Address, ...]:
        return tuple(v.address for v in self.inventory.vips.values())


def eligible_hosts(inv: Inventory, comp: Component) -> tuple[str, ...]:
    """Hosts that hold one of the roles the component may run on, in inventory order."""
    roles: set[Role] = set(comp.roles)
    return tuple(h.name for h in inv.hosts if roles & set(h.roles))


def place(inv: Inventory, comp: Component, placement: Placement) -> tuple[str, ...]:
    """The hosts a placement names; without `hosts`, the first `replicas` eligible hosts (all by default).

    Assumes `checks.placement_problems` found nothing: it does not validate.
    """
    if placement.hosts is not None:
        return tuple(h.name for h in inv.hosts if h.name in placement.hosts)
    eligible = eligible_hosts(inv, comp)
    return eligible if placement.replicas is None else eligible[: placement.replicas]
