"""HAProxy and keepalived in the lab: the VIP in front of Keystone and Galera.

HAProxy runs in the foreground as `haproxy_command` renders it (keepalived's track_process matches that
command line); keepalived runs VRRP only, in the foreground, and its VRRP child is adopted from its pidfile.
Up means: every HAProxy answers its /healthz monitor, and exactly one host holds each VIP.
"""

from __future__ import annotations

import json
from pathlib import Path

from hastack.lab import procs, runtime, system
from hastack.lab.plan import LAB_ROOT, LabPlan
from hastack.lab.state import LabState
from hastack.lab.system import in_netns, run
from hastack.model.endpoints import MONITOR_PORT
from hastack.render.haproxy import haproxy_command

VIP_TIMEOUT = 15.0


def keepalived_argv(host: str) -> tuple[str, ...]:
    root = Path(LAB_ROOT) / host
    return (
        "/usr/sbin/keepalived",
        "--dont-fork",
        "--log-console",
        "--log-detail",
        "--vrrp",
        "-f",
        str(root / "etc" / "keepalived.conf"),
        "-p",
        str(root / "run" / "keepalived.pid"),
        "-r",
        str(root / "run" / "keepalived-vrrp.pid"),
    )


def vip_holders(lab: LabPlan) -> dict[str, list[str]]:
    """For each VIP address, the load-balancer hosts that have it on an interface right now."""
    holders: dict[str, list[str]] = {str(v.address): [] for v in lab.deployment.inventory.vips.values()}
    for host in lab.deployment.hosts_of("keepalived"):
        shown = (
            run(in_netns(lab.host(host).netns, ["ip", "-json", "addr", "show"]), check=False).stdout or "[]"
        )
        for link in json.loads(shown):
            for a in link.get("addr_info", []):
                if a.get("local") in holders:
                    holders[a["local"]].append(host)
    return holders


def haproxy_answers(lab: LabPlan, host: str, from_host: str) -> bool:
    url = f"http://{lab.host(host).address}:{MONITOR_PORT}/healthz"
    return system.http_ok(lab.host(from_host).netns, url)


def ensure(lab: LabPlan, state: LabState, progress: system.Progress) -> None:
    dep = lab.deployment
    lbs = dep.hosts_of("haproxy")
    if not lbs:
        return
    for host in lbs:
        if runtime.running(state, "haproxy", host) is None:
            progress(f"haproxy: starting on {host}")
            start_haproxy(lab, state, host)
    observer = dep.hosts[0].name
    for host in lbs:
        _wait_answers(lab, host, observer)
    for host in dep.hosts_of("keepalived"):
        if runtime.running(state, "keepalived", host) is None:
            progress(f"keepalived: starting on {host}")
            start_keepalived(lab, state, host, adopt_child=False)
    if dep.inventory.vips:
        progress("keepalived: waiting for one holder per VIP")
        system.poll(
            "each VIP to have exactly one holder",
            lambda: all(len(h) == 1 for h in vip_holders(lab).values()),
            VIP_TIMEOUT,
            0.1,
        )
    for host in dep.hosts_of("keepalived"):
        adopt_vrrp_child(state, host)


def start_keepalived(lab: LabPlan, state: LabState, host: str, adopt_child: bool = True) -> None:
    """Start keepalived on `host`. Its pidfiles go first: the lab knows the old process is dead, but an
    unreaped one would make keepalived believe it still runs and refuse to start."""
    run_dir = Path(LAB_ROOT) / host / "run"
    for name in ("keepalived.pid", "keepalived-vrrp.pid"):
        (run_dir / name).unlink(missing_ok=True)
    state.processes = [r for r in state.processes if (r.name, r.host) != ("keepalived-vrrp", host)]
    runtime.launch(lab, state, "keepalived", host, keepalived_argv(host))
    if adopt_child:
        adopt_vrrp_child(state, host)


def start_haproxy(lab: LabPlan, state: LabState, host: str) -> None:
    runtime.launch(lab, state, "haproxy", host, haproxy_command(lab.deployment, host))


def _wait_answers(lab: LabPlan, host: str, observer: str) -> None:
    system.poll(f"haproxy on {host} to answer", lambda: haproxy_answers(lab, host, observer), 10, 0.1)


def adopt_vrrp_child(state: LabState, host: str) -> None:
    """Record keepalived's VRRP child, once the pidfile names a live keepalived (not a killed one)."""
    if runtime.running(state, "keepalived-vrrp", host) is not None:
        return
    pidfile = Path(LAB_ROOT) / host / "run" / "keepalived-vrrp.pid"

    def child() -> int | None:
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if procs.comm(pid) == "keepalived" else None

    system.poll(f"keepalived's VRRP child on {host}", lambda: child() is not None, 5)
    pid = child()
    rec = (
        procs.record("keepalived-vrrp", host, pid, str(Path(LAB_ROOT) / host / "log" / "keepalived.log"))
        if pid
        else None
    )
    if rec is not None:
        runtime.adopt(state, rec)
