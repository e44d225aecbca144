"""systemd units for hastack's own daemons. Pure.

Type=notify: the daemon says READY=1 once it holds its lease (agent) or has joined the election
(controller), and pings WATCHDOG=1 every loop. The watchdog is for a process that hangs, not for one that
is slow: safety never rests on it (a hung agent's gates run out by themselves, a hung leader's lease
expires), so it is at least 2 s (twice the lease for longer leases). At three heartbeats (0.6 s) it killed
agents busy renewing a thousand gates on a loaded 2-core machine, and the restart cost them their lease.
"""

from __future__ import annotations

from hastack.fencing import DAEMON_NICE
from hastack.model import Deployment
from hastack.model.endpoints import INVENTORY_CREDENTIAL, controller_credentials, host_dirs
from hastack.render.common import header

# What both daemons do without: a root process that cannot load modules, change the clock, gain privileges,
# write outside its own directories or leave files readable by others. The capabilities each keeps are its
# unit's; `systemd-analyze security` scores the result (docs/operator-guide.md, Security).
HARDENING = (
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "ProtectHome=yes",
    "ProtectSystem=strict",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectProc=invisible",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "UMask=0077",
)
# The node agent works in the router namespaces: setns (CAP_SYS_ADMIN), nf_tables over netlink
# (CAP_NET_ADMIN), gratuitous ARP on packet sockets (CAP_NET_RAW); it reads the L3 agent's pidfile
# whoever owns its directory (CAP_DAC_READ_SEARCH), and watches it through a pidfd (no /proc needed).
AGENT_LIMITS = (
    "CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_ADMIN CAP_NET_RAW CAP_DAC_READ_SEARCH",
    "RestrictNamespaces=net",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET",
)
# The controller only talks HTTP(S) to etcd, HAProxy, Neutron and its clients: no capability at all, and
# no root either (its unit's DynamicUser=).
CONTROLLER_LIMITS = (
    "CapabilityBoundingSet=",
    "RestrictNamespaces=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "PrivateDevices=yes",
)


def _unit(
    dep: Deployment,
    host: str,
    description: str,
    exec_start: str,
    watchdog_ms: int,
    after: str,
    service: tuple[str, ...],
) -> str:
    return "\n".join(
        [
            header(dep, host),
            "[Unit]",
            f"Description={description}",
            "Documentation=https://hastack.invalid/README",
            f"After=network-online.target {after}".rstrip(),
            "Wants=network-online.target",
            "StartLimitIntervalSec=0",
            "",
            "[Service]",
            "Type=notify",
            "NotifyAccess=main",
            f"ExecStart={exec_start}",
            "Restart=always",
            "RestartSec=100ms",
            # Exit status 2 is bad input (the inventory, an argument): restarting cannot mend it.
            "RestartPreventExitStatus=2",
            f"WatchdogSec={watchdog_ms}ms",
            "TimeoutStopSec=10s",
            f"Nice={DAEMON_NICE}",
            *HARDENING,
            *service,
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def watchdog_ms(dep: Deployment, daemon: str) -> int:
    """WatchdogSec of `hastack-agent` (ten heartbeats) or `hastack-controller` (ten ticks): at least 2 s
    and twice the lease TTL."""
    t = dep.inventory.timing
    beat = t.heartbeat_interval_ms if daemon == "hastack-agent" else t.controller_tick_ms
    return max(2000, 2000 * t.lease_ttl_s, 10 * beat)


def render_agent_unit(dep: Deployment, host: str) -> str:
    paths, dirs = dep.inventory.paths, host_dirs(dep, host)
    return _unit(
        dep,
        host,
        f"hastack node agent of {host} (lease, kernel gate, cleanup)",
        f"{paths.hastack_bin} agent --inventory {paths.inventory} --host {host}",
        watchdog_ms(dep, "hastack-agent"),
        "neutron-l3-agent.service",
        (f"ReadWritePaths=-{dirs.state} -{dirs.run}", *AGENT_LIMITS),
    )


def render_controller_unit(dep: Deployment, host: str) -> str:
    """The controller runs as a user of its own that systemd makes for it (DynamicUser=): what only root
    may read (the inventory, its secrets, keys) systemd copies into the unit's credentials directory (%d),
    where the controller reads them and nothing else can."""
    paths = dep.inventory.paths
    credentials = controller_credentials(dep, host)
    return _unit(
        dep,
        host,
        f"hastack HA controller on {host} (leader-elected)",
        f"{paths.hastack_bin} controller --inventory %d/{INVENTORY_CREDENTIAL} --host {host} "
        "--credentials %d",
        watchdog_ms(dep, "hastack-controller"),
        "",
        (
            "DynamicUser=yes",
            *(f"LoadCredential={name}:{source}" for name, source in credentials.items()),
            *CONTROLLER_LIMITS,
        ),
    )


def render_restart_dropin(dep: Deployment, host: str) -> str:
    """A drop-in for the packaged keepalived and haproxy units: restart at once on any exit.

    A keepalived that dies leaves its VIP on the interface; only a restart (which comes up as BACKUP and
    removes it) stops two hosts from answering for the VIP.
    """
    return header(dep, host) + "[Service]\nRestart=always\nRestartSec=100ms\n"
