"""Neutron in the lab (profile `openstack`): the real neutron-server and agents from PyPI (neutron 29).

On each controller the API (`neutron.wsgi.api:application` under uwsgi: there is no neutron-server script),
`neutron-rpc-server` and `neutron-periodic-workers` (the process for Neutron's periodic tasks when uwsgi
serves the API), behind HAProxy on the VIP like Keystone; its database on Galera, its messaging on the
lab's RabbitMQ cluster, its users and endpoints in the lab's Keystone. On each network and compute
host, inside the host's own mount namespace (hostmounts.py) and Open vSwitch (ovs.py), the OVS agent; on
network nodes the L3 and DHCP agents too.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from hastack.lab import dataplane, galera, hadaemons, procs, runtime, system
from hastack.lab.keystone import OPENSTACK_VENV, openstack_bin, openstack_cli, uwsgi_argv
from hastack.lab.openstack import hostmounts, ovs
from hastack.lab.plan import LAB_INVENTORY, LAB_ROOT, LabPlan
from hastack.lab.state import LabState
from hastack.lab.system import in_netns, run
from hastack.lab.topology import EXTERNAL_VLAN
from hastack.render.neutron import EXTERNAL_NET, bridge_mappings, render_neutron_conf

START_TIMEOUT = 120.0
EXTERNAL_PORT, TENANT_PORT = "hsx", "hst"  # the veth ports of br-ex / br-tenant in a host namespace
L3_AGENT = "neutron-l3-agent"  # its process record's name (faults and the bench find it by that)


def config_dir(host: str) -> Path:
    return Path(LAB_ROOT) / host / "etc" / "neutron"


def neutron_url(lab: LabPlan) -> str:
    dep = lab.deployment
    address = (
        dep.vip_addresses()[0] if dep.vip_addresses() else dep.host(dep.hosts_of("neutron-server")[0]).address
    )
    return f"http://{address}:{dep.port('neutron-server')}"


def _config_args(host: str, *files: str) -> list[str]:
    args = []
    for name in ("neutron.conf", *files):
        args += ["--config-file", str(config_dir(host) / name)]
    return args


def _prepare_dirs(host: str) -> None:
    """api-paste.ini next to the rendered files (neutron.conf names it), and the state directory."""
    shutil.copy(OPENSTACK_VENV / "etc" / "neutron" / "api-paste.ini", config_dir(host) / "api-paste.ini")
    (Path(LAB_ROOT) / host / "state" / "neutron" / "lock").mkdir(parents=True, exist_ok=True)


def ensure_server(lab: LabPlan, state: LabState, progress: system.Progress) -> None:
    dep = lab.deployment
    hosts = dep.hosts_of("neutron-server")
    if not hosts:
        return
    for host in hosts:
        _prepare_dirs(host)
    marker = Path(LAB_ROOT) / "neutron.bootstrapped"
    if not marker.exists():
        _bootstrap(lab, state, hosts[0], progress)
        marker.touch()
    for host in hosts:
        env = {
            "OS_NEUTRON_CONFIG_DIR": str(config_dir(host)),
            "OS_NEUTRON_CONFIG_FILES": "neutron.conf;ml2_conf.ini",
        }
        if runtime.running(state, "neutron-api", host) is None:
            progress(f"neutron: API (uwsgi) on {host}")
            addr = f"{lab.host(host).address}:{dep.port('neutron-server')}"
            runtime.launch(
                lab, state, "neutron-api", host, uwsgi_argv(addr, "neutron.wsgi.api:application"), env
            )
        if runtime.running(state, "neutron-rpc", host) is None:
            progress(f"neutron: RPC server on {host}")
            argv = (openstack_bin("neutron-rpc-server"), *_config_args(host, "ml2_conf.ini"))
            runtime.launch(lab, state, "neutron-rpc", host, argv)
        if runtime.running(state, "neutron-periodic", host) is None:
            argv = (openstack_bin("neutron-periodic-workers"), *_config_args(host, "ml2_conf.ini"))
            runtime.launch(lab, state, "neutron-periodic", host, argv)
    url = neutron_url(lab)
    progress(f"neutron: waiting for the API at {url}")
    system.poll(
        f"the Neutron API at {url}",
        lambda: system.http_ok(lab.host(hosts[0]).netns, url + "/", 2),
        START_TIMEOUT,
        0.5,
    )


def set_auto_failover(lab: LabPlan, state: LabState, on: bool, progress: system.Progress) -> None:
    """Neutron's own rescheduling of a dead L3 agent's routers (allow_automatic_l3agent_failover, with its
    default timers) on or off: each server's neutron.conf rewritten and its periodic workers, where the
    check runs, restarted. The `neutron` anchor of `bench l3` under profile openstack; off otherwise, as
    hastack moves routers and two movers would race."""
    for host in lab.deployment.hosts_of("neutron-server"):
        conf = config_dir(host) / "neutron.conf"
        text = render_neutron_conf(lab.deployment, host, l3_auto_failover=on)
        if conf.read_text(encoding="utf-8") == text:
            continue
        progress(f"neutron: {'enabling' if on else 'disabling'} automatic L3 agent failover on {host}")
        conf.write_text(text, encoding="utf-8")
        rec = runtime.running(state, "neutron-periodic", host)
        if rec is not None:
            procs.stop(rec, timeout=30)
    ensure_server(lab, state, progress)  # starts the periodic workers stopped above, with the new file


def _bootstrap(lab: LabPlan, state: LabState, first: str, progress: system.Progress) -> None:
    """Once per lab: the database and its schema, the Keystone user, service and endpoints."""
    dep = lab.deployment
    pw = galera.literal(dep.inventory.secrets.db_password)
    progress("neutron: database, schema (neutron-db-manage upgrade heads, about a minute)")
    galera.sql(
        lab,
        dep.hosts_of("database")[0],
        "CREATE DATABASE IF NOT EXISTS neutron; "
        f"CREATE USER IF NOT EXISTS 'neutron'@'%' IDENTIFIED BY {pw}; "
        "GRANT ALL PRIVILEGES ON neutron.* TO 'neutron'@'%'",
    )
    argv = [openstack_bin("neutron-db-manage"), *_config_args(first, "ml2_conf.ini"), "upgrade", "heads"]
    run(in_netns(lab.host(first).netns, argv), timeout=600)
    progress("neutron: Keystone user, service and endpoints")
    # The user's password is set from the inventory by resources.py: `openstack user create --password`
    # would show it to every user of the machine in /proc/PID/cmdline.
    argv = [sys.executable, "-m", "hastack.lab.openstack.resources", LAB_INVENTORY, "service-user"]
    run(in_netns(lab.host(first).netns, argv), timeout=120)
    openstack_cli(lab, first, "role", "add", "--project", "service", "--user", "neutron", "admin")
    if "network" not in openstack_cli(lab, first, "service", "list", "-f", "value", "-c", "Type").split():
        openstack_cli(lab, first, "service", "create", "--name", "neutron", "network")
        for interface in ("public", "internal", "admin"):
            openstack_cli(
                lab,
                first,
                "endpoint",
                "create",
                "--region",
                "RegionOne",
                "network",
                interface,
                neutron_url(lab),
            )


def ensure_agents(lab: LabPlan, state: LabState, progress: system.Progress) -> None:
    """Open vSwitch and the agents on every network and compute host, each in its own mount namespace."""
    dep = lab.deployment
    for host in dep.hosts_of("plugin-agent"):
        ovs.ensure(lab, state, host, progress)
        mappings = bridge_mappings(dep, host)
        ports = {"br-tenant": TENANT_PORT, "br-ex": EXTERNAL_PORT}
        for net, bridge in mappings.items():
            ovs.ensure_provider_bridge(lab, host, bridge, _lab_bridge(net), ports[bridge])
        _prepare_dirs(host)
        _agent(
            lab,
            state,
            host,
            "neutron-ovs-agent",
            "neutron-openvswitch-agent",
            "openvswitch_agent.ini",
            progress,
        )
    for host in dep.hosts_of("l3-agent"):
        _agent(lab, state, host, L3_AGENT, "neutron-l3-agent", "l3_agent.ini", progress)
    for host in dep.hosts_of("dhcp-agent"):
        _agent(lab, state, host, "neutron-dhcp-agent", "neutron-dhcp-agent", "dhcp_agent.ini", progress)


def start_l3_agent(lab: LabPlan, state: LabState, host: str) -> None:
    """neutron-l3-agent on `host` again (unless it runs), as its unit would; waits for nothing."""
    _agent(lab, state, host, L3_AGENT, "neutron-l3-agent", "l3_agent.ini", lambda _said: None)


def start_dhcp_agent(lab: LabPlan, state: LabState, host: str) -> None:
    """neutron-dhcp-agent on `host` again (unless it runs), as its unit would; waits for nothing."""
    _agent(lab, state, host, "neutron-dhcp-agent", "neutron-dhcp-agent", "dhcp_agent.ini", lambda _said: None)


def _lab_bridge(net: str) -> str:
    return dataplane.bridge(EXTERNAL_VLAN if net == EXTERNAL_NET else dataplane.TRUNK_VNI)


def _agent(
    lab: LabPlan, state: LabState, host: str, name: str, binary: str, ini: str, progress: system.Progress
) -> None:
    rec = runtime.running(state, name, host)
    if rec is None:
        progress(f"neutron: {binary} on {host}")
        argv = [openstack_bin(binary), *_config_args(host, ini)]
        wrapped = hostmounts.wrap(host, lab.host(host).netns, argv)
        rec = runtime.launch_wrapped(state, name, host, wrapped, _agent_env())
    if name == L3_AGENT:
        hadaemons.record_l3_pid(rec)  # the node agent watches it


def _agent_env() -> dict[str, str]:
    """The agents start `privsep-helper` (through root_helper `env`) and neutron's other helpers by name."""
    return {"PATH": f"{OPENSTACK_VENV / 'bin'}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"}


def router_ids(lab: LabPlan, inventory: str) -> dict[str, str]:
    """The lab's router names (r0000, ...) -> Neutron's router ids, asked from the first controller."""
    host = lab.host(lab.deployment.hosts_of("neutron-server")[0])
    argv = [sys.executable, "-m", "hastack.lab.openstack.resources", inventory, "routers"]
    answer = json.loads(run(in_netns(host.netns, argv), timeout=60).stdout)
    return {name: str(r["id"]) for name, r in answer.items()}


def router_namespace(state: LabState, host: str, router_id: str) -> str:
    """The path of a network node's qrouter- namespace as the root mount namespace can reach it: through
    a process living in the host's mount namespace (its ovsdb-server)."""
    rec = runtime.running(state, "ovsdb-server", host)
    if rec is None:
        raise system.LabError(f"no ovsdb-server on {host}: is the OpenStack lab up?")
    return f"/proc/{rec.pid}/root/run/netns/qrouter-{router_id}"
