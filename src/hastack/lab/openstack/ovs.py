"""A private Open vSwitch per OpenStack host of the lab: ovsdb-server and ovs-vswitchd in the host's own
mount and network namespaces, bridges on the userspace datapath (`netdev`: this kernel has no OVS module).

The lab's "physical" networks stay what the base lab builds (Linux bridges over VXLAN, see dataplane.py):
a provider bridge (`br-ex` for the external network, `br-tenant` for the VLAN trunk that carries tenant
networks) gets one veth port whose peer sits in the lab's Linux bridge of that segment. Open vSwitch does
the VLAN tagging in userspace, so the kernel needs neither 802.1Q devices nor VLAN-filtering bridges, and
Neutron needs no tunnels (userspace VXLAN would want the underlay address on an OVS bridge).
"""

from __future__ import annotations

from pathlib import Path

from hastack.lab import runtime, system
from hastack.lab.openstack import hostmounts
from hastack.lab.plan import LAB_ROOT, LabPlan
from hastack.lab.state import LabState
from hastack.lab.system import run

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
DB_SOCK = "unix:/run/openvswitch/db.sock"
# Neutron's default ovsdb_connection is tcp:127.0.0.1:6640; 127.0.0.1 is the host namespace's own.
OVSDB_LISTEN = "ptcp:6640:127.0.0.1"


def _db(host: str) -> Path:
    return Path(LAB_ROOT) / host / "state" / "ovs" / "conf.db"


def _log(host: str, name: str) -> str:
    return str(Path(LAB_ROOT) / host / "log" / f"{name}.log")


def vsctl(lab: LabPlan, host: str, *args: str, check: bool = True) -> str:
    argv = hostmounts.wrap(
        host, lab.host(host).netns, ["ovs-vsctl", f"--db={DB_SOCK}", "--timeout=10", *args]
    )
    return run(argv, timeout=20, check=check).stdout


def ensure(lab: LabPlan, state: LabState, host: str, progress: system.Progress) -> None:
    """ovsdb-server and ovs-vswitchd of `host` running, the database initialised."""
    state.record_mount(host)
    hostmounts.ensure(host)
    db = _db(host)
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        run(["ovsdb-tool", "create", str(db), SCHEMA])
    netns = lab.host(host).netns
    if runtime.running(state, "ovsdb-server", host) is None:
        progress(f"open vswitch: ovsdb-server on {host}")
        argv: tuple[str, ...] = (
            "ovsdb-server",
            str(db),
            "--remote=punix:/run/openvswitch/db.sock",
            f"--remote={OVSDB_LISTEN}",
            "--unixctl=/run/openvswitch/ovsdb-server.ctl",
            f"--log-file={_log(host, 'ovsdb-server')}",
        )
        runtime.launch_wrapped(state, "ovsdb-server", host, hostmounts.wrap(host, netns, argv))
    system.poll(f"ovsdb-server on {host}", lambda: _answers(lab, host), timeout=20, interval=0.2)
    vsctl(lab, host, "--no-wait", "init")
    if runtime.running(state, "ovs-vswitchd", host) is None:
        progress(f"open vswitch: ovs-vswitchd on {host}")
        argv = (
            "ovs-vswitchd",
            DB_SOCK,
            "--unixctl=/run/openvswitch/ovs-vswitchd.ctl",
            f"--log-file={_log(host, 'ovs-vswitchd')}",
        )
        runtime.launch_wrapped(state, "ovs-vswitchd", host, hostmounts.wrap(host, netns, argv))
    # `ovs-vsctl` without --no-wait returns once ovs-vswitchd has applied the change: it is up.
    system.poll(
        f"ovs-vswitchd on {host}",
        lambda: (
            vsctl(lab, host, "--timeout=2", "set", "Open_vSwitch", ".", "other_config:hastack=1", check=False)
            == ""
        ),
        timeout=30,
        interval=0.3,
    )


def _answers(lab: LabPlan, host: str) -> bool:
    try:
        vsctl(lab, host, "--no-wait", "show")
    except system.LabError:
        return False
    return True


def ensure_provider_bridge(lab: LabPlan, host: str, ovs_bridge: str, lab_bridge: str, port: str) -> None:
    """OVS bridge `ovs_bridge` (netdev) with a veth port whose peer is a port of the lab's Linux bridge
    `lab_bridge` in the same host namespace."""
    netns = lab.host(host).netns
    vsctl(
        lab,
        host,
        "--may-exist",
        "add-br",
        ovs_bridge,
        "--",
        "set",
        "bridge",
        ovs_bridge,
        "datapath_type=netdev",
    )
    peer = f"{port}l"
    if not system.link_exists(netns, port):
        run(["ip", "-n", netns, "link", "add", port, "type", "veth", "peer", "name", peer])
    run(["ip", "-n", netns, "link", "set", peer, "master", lab_bridge, "up"])
    run(["ip", "-n", netns, "link", "set", port, "up"])
    vsctl(lab, host, "--may-exist", "add-port", ovs_bridge, port)
