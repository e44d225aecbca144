"""hastack's own daemons in the lab: a node agent per network node, a controller per controller host.

They run as the rendered systemd units ask (see render.systemd), with the lab supervisor standing in for
systemd: restart on exit, and the watchdog through a NOTIFY_SOCKET per daemon (LAB_ROOT/HOST/NAME.notify).
The node agent learns the lab L3 agent's PID from a pidfile the lab writes when it starts that agent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hastack.fencing import DAEMON_NICE
from hastack.lab import runtime
from hastack.lab.openstack import hostmounts
from hastack.lab.plan import LAB_INVENTORY, LAB_ROOT, LabPlan
from hastack.lab.state import LabState, ProcessRecord
from hastack.lab.system import in_netns, run
from hastack.render.systemd import watchdog_ms

AGENT, CONTROLLER = "hastack-agent", "hastack-controller"
DAEMONS = (AGENT, CONTROLLER)


def _hastack() -> str:
    return str(Path(sys.executable).parent / "hastack")


def l3_pidfile(host: str) -> Path:
    return Path(LAB_ROOT) / host / "l3-agent.pid"


def notify_socket(name: str, host: str) -> Path:
    return Path(LAB_ROOT) / host / f"{name}.notify"


def watchdog_s(lab: LabPlan, name: str) -> float:
    return watchdog_ms(lab.deployment, name) / 1000


def record_l3_pid(rec: ProcessRecord) -> None:
    """Write the L3 agent's pidfile (atomically: the node agent may read it at any moment)."""
    path = l3_pidfile(rec.host)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{rec.pid}\n")
    tmp.replace(path)


def start(lab: LabPlan, state: LabState, name: str, host: str) -> ProcessRecord:
    """Start one of hastack's daemons on `host` (unless it runs) and record it."""
    # Niced as the rendered unit does it (Nice=): the lab is a loaded machine too.
    argv = [
        "nice",
        "-n",
        str(DAEMON_NICE),
        _hastack(),
        "agent" if name == AGENT else "controller",
        "--inventory",
        LAB_INVENTORY,
        "--host",
        host,
    ]
    if name == AGENT:
        argv += ["--l3-pidfile", str(l3_pidfile(host))]
    env = {"NOTIFY_SOCKET": str(notify_socket(name, host)), "PYTHONUNBUFFERED": "1"}
    if name == AGENT and lab.deployment.inventory.lab.profile == "openstack":
        # Where neutron-l3-agent runs: the host's own mount namespace holds its qrouter- namespaces.
        return runtime.launch_wrapped(
            state, name, host, hostmounts.wrap(host, lab.host(host).netns, argv), env
        )
    # nsenter --net: the agent reaches router namespaces by their /run/netns names.
    return runtime.launch(lab, state, name, host, tuple(argv), env=env, shared_mounts=True)


def ensure_agents(lab: LabPlan, state: LabState) -> list[str]:
    return [ensure_one(lab, state, AGENT, host) for host in lab.deployment.hosts_of(AGENT)]


def ensure_controllers(lab: LabPlan, state: LabState) -> list[str]:
    return [ensure_one(lab, state, CONTROLLER, host) for host in lab.deployment.hosts_of(CONTROLLER)]


def ensure_one(lab: LabPlan, state: LabState, name: str, host: str) -> str:
    if runtime.running(state, name, host) is not None:
        return f"{name} runs on {host}"
    rec = start(lab, state, name, host)
    return f"started {name} on {host} (pid {rec.pid})"


def ctl(lab: LabPlan, *args: str, on: str | None = None) -> Any:
    """`hastack ctl --json ...` from inside controller host `on` (default: the first), as an operator there
    would (the root namespace has no route into the lab); its JSON answer. LabError with ctl's one-line
    error otherwise."""
    host = lab.host(on or lab.deployment.hosts_of(CONTROLLER)[0])
    argv = [_hastack(), "ctl", "--inventory", LAB_INVENTORY, *args, "--json"]
    return json.loads(run(in_netns(host.netns, argv), timeout=30).stdout)
