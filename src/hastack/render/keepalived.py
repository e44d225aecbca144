"""keepalived.conf for a load-balancer host: one VRRPv3 instance per VIP, tracking the local HAProxy. Pure."""

from __future__ import annotations

from hastack.model import Deployment
from hastack.model.endpoints import MONITOR_PORT
from hastack.render.common import header


def vmac_interface(vrid: int) -> str:
    return f"vrrp.{vrid}"


def render_keepalived(dep: Deployment, host: str) -> str:
    inv = dep.inventory
    me = dep.host(host)
    rank = dep.hosts_of("keepalived").index(host)
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
        "# The VIP may only stay where HAProxy answers. An HTTP check of its monitor, not a process check:",
        "# a frozen HAProxy still exists but serves nothing, and keepalived's process tracking needs the",
        "# kernel's process events, which only the initial network namespace delivers.",
        "vrrp_script haproxy {",
        f'    script "/usr/bin/curl -sf -o /dev/null --max-time 0.5 http://{me.address}:{MONITOR_PORT}/healthz"',
        "    interval 1",
        "    timeout 1",
        "    fall 1",
        "    rise 2",
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
            "    track_script {",
            "        haproxy",
            "    }",
            "}",
        ]
    return "\n".join(out) + "\n"
