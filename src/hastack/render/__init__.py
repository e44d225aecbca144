"""Config rendering: a Deployment in, the configuration of every real daemon on every host out. Pure."""

from __future__ import annotations

from collections.abc import Callable

from hastack.model import Deployment
from hastack.render.common import RenderedFile
from hastack.render.etcd import render_etcd
from hastack.render.galera import render_galera
from hastack.render.haproxy import render_haproxy
from hastack.render.keepalived import render_keepalived
from hastack.render.keystone import render_keystone
from hastack.render.neutron import (
    render_dhcp_agent,
    render_l3_agent,
    render_ml2,
    render_neutron_conf,
    render_openvswitch_agent,
)
from hastack.render.rabbitmq import render_erlang_cookie, render_rabbitmq_conf, render_rabbitmq_definitions
from hastack.render.systemd import render_agent_unit, render_controller_unit, render_restart_dropin

# component -> the files it needs on each of its hosts: (relative path, renderer)
_FILES: dict[str, tuple[tuple[str, Callable[[Deployment, str], str]], ...]] = {
    "haproxy": (
        ("haproxy.cfg", render_haproxy),
        ("systemd/haproxy.service.d/hastack.conf", render_restart_dropin),
    ),
    "keepalived": (
        ("keepalived.conf", render_keepalived),
        ("systemd/keepalived.service.d/hastack.conf", render_restart_dropin),
    ),
    "database": (("mariadb.cnf", render_galera),),
    "rabbitmq": (
        ("rabbitmq.conf", render_rabbitmq_conf),
        ("rabbitmq-definitions.json", lambda dep, _host: render_rabbitmq_definitions(dep)),
        ("erlang.cookie", lambda dep, _host: render_erlang_cookie(dep)),
    ),
    "etcd": (("etcd.conf.yml", render_etcd),),
    "keystone": (("keystone/keystone.conf", render_keystone),),
    "neutron-server": (
        ("neutron/neutron.conf", render_neutron_conf),
        ("neutron/ml2_conf.ini", render_ml2),
    ),
    "plugin-agent": (
        ("neutron/neutron.conf", render_neutron_conf),
        ("neutron/openvswitch_agent.ini", render_openvswitch_agent),
    ),
    "l3-agent": (("neutron/l3_agent.ini", render_l3_agent),),
    "dhcp-agent": (("neutron/dhcp_agent.ini", render_dhcp_agent),),
    "hastack-controller": (("systemd/hastack-controller.service", render_controller_unit),),
    "hastack-agent": (("systemd/hastack-agent.service", render_agent_unit),),
}


# The files that hold a secret (a password, its hash, the Erlang cookie): readable by their owner only, and
# that owner the user of the daemon that reads each, as Debian's packages name them (no other daemon's
# user may read it). Path -> (mode, owner).
SECRETS: dict[str, tuple[int, str]] = {
    "rabbitmq.conf": (0o600, "rabbitmq"),
    "rabbitmq-definitions.json": (0o600, "rabbitmq"),
    "erlang.cookie": (0o400, "rabbitmq"),  # as RabbitMQ demands
    "keystone/keystone.conf": (0o600, "keystone"),
    "neutron/neutron.conf": (0o600, "neutron"),
}


def render_all(dep: Deployment) -> tuple[RenderedFile, ...]:
    """Every file of every host, in inventory order."""
    return tuple(
        RenderedFile(
            host=h.name,
            path=path,
            text=fn(dep, h.name),
            mode=SECRETS[path][0] if path in SECRETS else 0o644,
            owner=SECRETS[path][1] if path in SECRETS else None,
        )
        for h in dep.hosts
        for comp in dep.components_on(h.name)
        for path, fn in _FILES.get(comp, ())
    )


__all__ = ["RenderedFile", "render_all"]
