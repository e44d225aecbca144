"""What every experiment does with the lab: start a load probe inside a lab host, inject a fault under the
lab's lock (recording its instant), heal, and find the VIP. One place, so the runners differ only in what
they measure."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from hastack.bench.probe import PASSWORD_ENV
from hastack.lab import faults, realise, system
from hastack.lab.openstack import neutron
from hastack.lab.plan import LabPlan
from hastack.lab.state import LabState, locked


def start_probe(netns: str, *args: str, password: str | None = None) -> subprocess.Popen[str]:
    """`python -m hastack.bench.probe ARGS` inside `netns`; its JSON samples on stdout, errors on stderr.
    The password goes in the environment: an argument is readable by every user in /proc/PID/cmdline."""
    argv = system.in_netns(netns, [sys.executable, "-m", "hastack.bench.probe", *args])
    env = {**os.environ, PASSWORD_ENV: password} if password is not None else None
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def keystone_url(lab: LabPlan) -> str:
    return f"http://{vip(lab)}:{lab.deployment.port('keystone')}/v3"


def keystone_probe(
    lab: LabPlan, client: str, seconds: float, interval: float, timeout_s: float = 5.0
) -> subprocess.Popen[str]:
    """`GET /v3/users` through the VIP from lab host `client` every `interval` (token auth)."""
    return start_probe(
        lab.host(client).netns,
        "keystone",
        "--url",
        keystone_url(lab),
        "--seconds",
        str(seconds),
        "--interval",
        str(interval),
        "--timeout",
        str(timeout_s),
        password=lab.deployment.inventory.secrets.keystone_admin_password,
    )


def inject(lab: LabPlan, *kind_targets: tuple[str, str], loss_pct: float = 0.0) -> float:
    """Inject the faults at once; the wall-clock instant just before the first takes effect. `loss_pct`:
    the packet loss of a `degrade`."""
    with locked():
        at = time.time()
        for kind, target in kind_targets:
            loss = loss_pct if kind == "degrade" else 0.0
            faults.inject(lab, LabState.load(), faults.parse(lab, kind, target, loss_pct=loss))
    return at


def heal(lab: LabPlan, target: str | None = None) -> None:
    """Undo the recorded faults (all, or those touching `target`) and restart whatever is dead."""
    with locked():
        realise.heal(lab, LabState.load(), target, lambda _s: None)


def neutron_auto_failover(lab: LabPlan, on: bool, progress: system.Progress) -> None:
    """Real Neutron's own L3 failover on or off (profile openstack: the `neutron` anchor's trials)."""
    with locked():
        neutron.set_auto_failover(lab, LabState.load(), on, progress)


def vip(lab: LabPlan) -> str:
    """The deployment's first VIP, where the APIs and the database are reached."""
    return str(next(iter(lab.deployment.inventory.vips.values())).address)
