"""keepalived.conf for a load-balancer host: one VRRPv3 instance per VIP, tracking the local HAProxy. Pure."""

from __future__ import annotations

from hastack.model import Deployment
from hastack.render.common import header
from hastack.render.haproxy import haproxy_command


def vmac_interface(vrid: int) -> str:
    return f"vrrp.{vrid}"


def render_keepalived(dep: Deployment, host: str) -> str:
    inv = dep.inventory
    me = dep.host(host)
    rank = dep.hosts_of("keepalived").index(host)
    haproxy = " ".join(haproxy_command(dep, host)[:3])
    out = [
        header(dep, host),
        "global_defs {",
        f"    router_id {host}",
        "    vrrp_version 3",
        "    enable_script_security",
        "    script_user root",
        "    # Announce the VIP at once on takeover, again a second later, then every 10 s while master,",
        "    # so that switches and clients with a stale ARP entry learn the new owner.",
        "    vrrp_garp_master_delay 1",
        "    vrrp_garp_master_repeat 3",
        "    vrrp_garp_master_refresh 10",
        "    vrrp_garp_master_refresh_repeat 1",
        "    vrrp_higher_prio_send_advert true",
        "}",
        "",
        "# The VIP may only stay where HAProxy runs: the kernel's process events tell keepalived at once",
        "# when this host's HAProxy (matched by its own config file) exits.",
        "vrrp_track_process haproxy {",
        f"    process {haproxy}",
        "    param_match partial",
        "    quorum 1",
        "}",
    ]
    for name, vip in inv.vips.items():
        net = inv.networks[vip.network]
        out += [
            "",
            f"vrrp_instance {name} {{",
            "    state BACKUP",
            "    # No preemption: a recovered host does not take the VIP back and cause a second hiccup.",
            "    nopreempt",
            f"    interface {me.interface}",
            f"    virtual_router_id {vip.vrid}",
            f"    priority {150 - 10 * rank}",
            f"    advert_int {inv.timing.vrrp_advert_interval_s:g}",
            "    # A virtual MAC moves with the VIP: clients need no new ARP entry after a takeover.",
            f"    use_vmac {vmac_interface(vip.vrid)}",
            "    vmac_xmit_base",
            "    virtual_ipaddress {",
            f"        {vip.address}/{net.prefixlen}",
            "    }",
            "    track_process {",
            "        haproxy",
            "    }",
            "}",
        ]
    return "\n".join(out) + "\n"
