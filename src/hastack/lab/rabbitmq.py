"""RabbitMQ in the lab: three nodes, each with its own hostname and /etc/hosts, clustered by classic
config peer discovery, confirmed by `rabbitmqctl cluster_status`.

Each node needs a hostname of its own (its Erlang node name is rabbit@HOST): the lab runs it in a UTS
namespace set to the host's name, and `ip netns exec` bind-mounts /etc/netns/NS/hosts over /etc/hosts.
epmd, which RabbitMQ starts and which daemonizes, is found among the namespace's processes and recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hastack.lab import procs, runtime, system
from hastack.lab.plan import LAB_ROOT, LabPlan
from hastack.lab.state import LabState
from hastack.lab.system import LabError, in_netns, run
from hastack.model.endpoints import rabbitmq_node

RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"
FORM_TIMEOUT = 120.0
NETNS_ETC = Path("/etc/netns")


def _home(host: str) -> Path:
    return Path(LAB_ROOT) / host / "state" / "rabbitmq"


def env(host: str) -> dict[str, str]:
    root, home = Path(LAB_ROOT) / host, _home(host)
    return {
        "HOME": str(home),
        "RABBITMQ_NODENAME": rabbitmq_node(host),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_CONFIG_FILE": str(root / "etc" / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "etc" / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(root / "run" / "rabbitmq.pid"),
        # Makes the start script exec the node instead of waiting on it: the lab's PID is the node's.
        "RUNNING_UNDER_SYSTEMD": "true",
    }


def with_hostname(host: str, *argv: str) -> tuple[str, ...]:
    """argv run in a UTS namespace whose hostname is `host` (unshare execs, so the PID stays argv's)."""
    return ("unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', host, *argv)


def ctl(lab: LabPlan, host: str, *args: str, timeout: float = 30) -> str:
    argv = with_hostname(host, f"{RABBITMQ_BIN}/rabbitmqctl", "-n", rabbitmq_node(host), *args)
    envs = [f"{k}={v}" for k, v in env(host).items()]
    return run(in_netns(lab.host(host).netns, ("env", *envs, *argv)), timeout=timeout).stdout


def running_nodes(lab: LabPlan, host: str) -> list[str]:
    try:
        out = ctl(lab, host, "cluster_status", "--formatter", "json", timeout=15)
        nodes: list[str] = json.loads(out).get("running_nodes", [])
    except (system.LabError, ValueError):
        return []
    return nodes


def prepare(lab: LabPlan, state: LabState) -> None:
    """Directories, the cookie, the plugin list, and each node's /etc/hosts (recorded for teardown)."""
    hosts_file = "127.0.0.1 localhost\n" + "".join(f"{h.address} {h.name}\n" for h in lab.hosts)
    if not NETNS_ETC.exists():
        NETNS_ETC.mkdir(parents=True)
        state.dirs.insert(0, str(NETNS_ETC))
    for host in lab.deployment.hosts_of("rabbitmq"):
        home = _home(host)
        for sub in ("mnesia", "log"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():  # mode 0400 from the first byte: Erlang refuses a cookie others can read
            source = Path(LAB_ROOT) / host / "etc" / "erlang.cookie"
            system.write_with_mode(cookie, source.read_text(encoding="utf-8"), 0o400)
        os.chmod(cookie, 0o400)
        (Path(LAB_ROOT) / host / "etc" / "enabled_plugins").write_text("[].\n")
        etc = NETNS_ETC / lab.host(host).netns
        if str(etc) not in state.dirs:
            state.dirs.append(str(etc))
        etc.mkdir(exist_ok=True)
        (etc / "hosts").write_text(hosts_file)
    state.save()


def ensure(lab: LabPlan, state: LabState, progress: system.Progress) -> None:
    hosts = lab.deployment.hosts_of("rabbitmq")
    if not hosts:
        return
    prepare(lab, state)
    for host in hosts:
        if runtime.running(state, "rabbitmq", host) is None:
            progress(f"rabbitmq: starting {rabbitmq_node(host)}")
            argv = with_hostname(host, f"{RABBITMQ_BIN}/rabbitmq-server")
            runtime.launch(lab, state, "rabbitmq", host, argv, env(host))
    progress(f"rabbitmq: waiting for {len(hosts)} running nodes")
    system.poll(
        "the RabbitMQ cluster to form",
        lambda: len(running_nodes(lab, hosts[0])) == len(hosts),
        FORM_TIMEOUT,
        0.5,
    )
    for host in hosts:
        _adopt_epmd(lab, state, host)


def _adopt_epmd(lab: LabPlan, state: LabState, host: str) -> None:
    if runtime.running(state, "epmd", host) is not None:
        return
    for pid in system.netns_pids(lab.host(host).netns):
        if procs.comm(pid) == "epmd":
            rec = procs.record("epmd", host, pid, str(Path(LAB_ROOT) / host / "log" / "rabbitmq.log"))
            if rec is not None:
                runtime.adopt(state, rec)


def queue_leader(lab: LabPlan, host: str, queue: str, vhost: str = "openstack") -> str:
    """The lab host whose RabbitMQ node holds the leader of quorum queue `queue` (asked of `host`)."""
    listing = ctl(lab, host, "list_queues", "-p", vhost, "name", "leader", "--quiet")
    leaders = dict(line.split("\t") for line in listing.splitlines() if "\t" in line)
    if queue not in leaders:
        raise LabError(f"no queue {queue} in vhost {vhost} on {host}")
    return leaders[queue].split("@")[1]
