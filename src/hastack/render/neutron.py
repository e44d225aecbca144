"""Neutron's configuration: the server (API under uwsgi + the RPC server), ML2 with Open vSwitch, and the
L3, DHCP and OVS agents of network and compute hosts. Pure.

What every file depends on is gathered in `NeutronSettings`, so that the lab profile (from the inventory)
and the contract tests (one neutron-server on loopback) render through the same code.
Choices an operator may question, and why:
- `datapath_type = netdev`, `ovs_use_veth = true`: Open vSwitch's userspace datapath (no kernel module
  here); veth ports survive an ovs-vswitchd restart, internal ports moved into a namespace do not.
- `[agent] root_helper = env`: the agents run as root inside their host's own namespaces, with no sudo.
- `[privsep*] thread_pool_size = 32` for the agents: oslo.privsep's pool defaults to the number of cores.
  The L3 agent sends 3 gratuitous ARPs per floating IP, each an `arping` of about 1 s in that pool, and
  every other privileged call of a router's build queues behind them: on 2 cores, 3 routers with 9
  floating IPs each took 65-117 s to build; with 32 threads 17 s (measured in the lab, DEBUG logging on).
- `allow_automatic_l3agent_failover`: Neutron's own rescheduling of a dead agent's routers. Off when hastack
  moves routers (two movers race); on for the `neutron` anchor policy, with Neutron's default timers.
"""

from __future__ import annotations

from dataclasses import dataclass

from hastack.model import Deployment
from hastack.model.endpoints import database_address, host_dirs, keystone_url
from hastack.render.common import header

EXTERNAL_NET = "external"  # the flat provider network of floating IPs, on br-ex
TENANT_NET = "tenant"  # the VLAN trunk that carries tenant networks, on br-tenant
TENANT_VLANS = "100:999"
PRIVSEP_THREADS = 32
# The privsep daemons an agent starts, by their configuration section (neutron/privileged/__init__.py).
PRIVSEP_SECTIONS = ("privsep", "privsep_link", "privsep_namespace")


@dataclass(frozen=True)
class KeystoneAuth:
    url: str  # the identity endpoint, e.g. http://VIP:5000/v3
    password: str  # of the `neutron` service user in project `service`


@dataclass(frozen=True)
class NeutronSettings:
    database_url: str  # mysql+pymysql://...
    transport_url: str  # rabbit://user:pw@h1:5672,user:pw@h2:5672/
    state_path: str
    lock_path: str
    api_paste: str  # path of neutron's api-paste.ini
    auth: KeystoneAuth | None  # None: auth_strategy = noauth (contract tests on loopback only)
    l3_auto_failover: bool = False
    router_auto_schedule: bool = True
    dhcp_agents_per_network: int = 2
    report_interval_s: float = 30.0  # Neutron's defaults: the `neutron` anchor runs with them
    agent_down_time_s: int = 75
    physnet_mtu: int = 1450


def _lines(sections: dict[str, dict[str, object]]) -> str:
    out: list[str] = []
    for section, options in sections.items():
        out.append(f"[{section}]")
        out.extend(f"{key} = {_value(value)}" for key, value in options.items())
        out.append("")
    return "\n".join(out)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _keystone(auth: KeystoneAuth | None, user: str = "neutron") -> dict[str, dict[str, object]]:
    if auth is None:
        return {}
    return {
        "keystone_authtoken": {
            "www_authenticate_uri": auth.url,
            "auth_url": auth.url,
            "auth_type": "password",
            "project_domain_name": "Default",
            "user_domain_name": "Default",
            "project_name": "service",
            "username": user,
            "password": auth.password,
        }
    }


def neutron_conf(s: NeutronSettings, host: str) -> str:
    """neutron.conf: read by the server and by every agent (each adds its own .ini)."""
    sections: dict[str, dict[str, object]] = {
        "DEFAULT": {
            "host": host,
            "core_plugin": "ml2",
            "service_plugins": "router",
            "auth_strategy": "keystone" if s.auth else "noauth",
            "transport_url": s.transport_url,
            "state_path": s.state_path,
            "api_paste_config": s.api_paste,
            "dhcp_agents_per_network": s.dhcp_agents_per_network,
            "allow_automatic_l3agent_failover": s.l3_auto_failover,
            "router_auto_schedule": s.router_auto_schedule,
            "agent_down_time": s.agent_down_time_s,
            # The lab's tenant segments are VXLAN underneath: 50 bytes less than the 1500 of Ethernet.
            "global_physnet_mtu": s.physnet_mtu,
            "notify_nova_on_port_status_changes": False,
            "notify_nova_on_port_data_changes": False,
            "use_stderr": True,
        },
        "database": {"connection": s.database_url, "max_retries": -1, "retry_interval": 1},
        "agent": {"root_helper": "env", "report_interval": s.report_interval_s},
        "oslo_concurrency": {"lock_path": s.lock_path},
        # The lab's admin project holds every router and floating IP (`bench scale`: a thousand).
        "quotas": {f"quota_{r}": -1 for r in ("network", "subnet", "port", "router", "floatingip")},
        **_keystone(s.auth),
    }
    return _lines(sections)


def ml2_conf() -> str:
    """Tenant networks are VLANs of one provider trunk; floating IPs live on a flat external network."""
    return _lines(
        {
            "ml2": {
                "type_drivers": "flat,vlan",
                "tenant_network_types": "vlan",
                "mechanism_drivers": "openvswitch",
                "extension_drivers": "port_security",
            },
            "ml2_type_flat": {"flat_networks": EXTERNAL_NET},
            "ml2_type_vlan": {"network_vlan_ranges": f"{TENANT_NET}:{TENANT_VLANS}"},
        }
    )


def openvswitch_agent_ini(mappings: dict[str, str]) -> str:
    """The OVS agent of one host; `mappings`: provider network -> OVS bridge."""
    return _lines(
        {
            "ovs": {
                "datapath_type": "netdev",
                "integration_bridge": "br-int",
                "bridge_mappings": ",".join(f"{net}:{br}" for net, br in mappings.items()),
            },
            "agent": {"l2_population": False},
            # No conntrack-based firewall: the lab measures routing failover, not security groups.
            "securitygroup": {"firewall_driver": "noop", "enable_security_group": False},
        }
    )


def _privsep() -> dict[str, dict[str, object]]:
    return {section: {"thread_pool_size": PRIVSEP_THREADS} for section in PRIVSEP_SECTIONS}


def l3_agent_ini(interface_driver: str = "openvswitch", metadata_proxy: bool = True) -> str:
    return _lines(
        {
            "DEFAULT": {
                "interface_driver": interface_driver,
                "ovs_use_veth": True,
                "enable_metadata_proxy": metadata_proxy,
            },
            "ovs": {"integration_bridge": "br-int"},
            **_privsep(),
        }
    )


def dhcp_agent_ini(interface_driver: str = "openvswitch") -> str:
    return _lines(
        {
            "DEFAULT": {
                "interface_driver": interface_driver,
                "ovs_use_veth": True,
                "dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq",
                "enable_isolated_metadata": False,
            },
            "ovs": {"integration_bridge": "br-int"},
            **_privsep(),
        }
    )


def bridge_mappings(dep: Deployment, host: str) -> dict[str, str]:
    """Network nodes reach both provider networks, compute hosts only the tenant trunk."""
    mappings = {TENANT_NET: "br-tenant"}
    if host in dep.hosts_of("l3-agent"):
        mappings[EXTERNAL_NET] = "br-ex"
    return mappings


def settings(dep: Deployment, host: str, l3_auto_failover: bool = False) -> NeutronSettings:
    """NeutronSettings of `host` from the inventory: database and Keystone through the VIP, every
    RabbitMQ node in the transport URL (oslo.messaging fails over between them)."""
    s = dep.inventory.secrets
    db = f"mysql+pymysql://neutron:{s.db_password}@{database_address(dep)}:{dep.port('database')}/neutron"
    amqp = dep.port("rabbitmq")
    brokers = ",".join(
        f"{s.rabbitmq_user}:{s.rabbitmq_password}@{dep.host(h).address}:{amqp}"
        for h in dep.hosts_of("rabbitmq")
    )
    dirs = host_dirs(dep, host)
    return NeutronSettings(
        database_url=db,
        transport_url=f"rabbit://{brokers}/",
        state_path=f"{dirs.state}/neutron",
        lock_path=f"{dirs.state}/neutron/lock",
        api_paste=f"{dirs.config}/neutron/api-paste.ini",
        auth=KeystoneAuth(keystone_url(dep), s.neutron_password),
        l3_auto_failover=l3_auto_failover,
    )


def render_neutron_conf(dep: Deployment, host: str, l3_auto_failover: bool = False) -> str:
    """`l3_auto_failover`: for the `neutron` anchor of `hastack bench l3 --profile openstack` only."""
    return header(dep, host) + neutron_conf(settings(dep, host, l3_auto_failover), host)


def render_ml2(dep: Deployment, host: str) -> str:
    return header(dep, host) + ml2_conf()


def render_openvswitch_agent(dep: Deployment, host: str) -> str:
    return header(dep, host) + openvswitch_agent_ini(bridge_mappings(dep, host))


def render_l3_agent(dep: Deployment, host: str) -> str:
    return header(dep, host) + l3_agent_ini()


def render_dhcp_agent(dep: Deployment, host: str) -> str:
    return header(dep, host) + dhcp_agent_ini()
