"""MariaDB Galera in the lab: bootstrap, join by SST, and the users the other services need.

The first database host bootstraps a new cluster (`--wsrep-new-cluster`) on a freshly initialised data
directory; the others join one at a time by rsync SST, each confirmed by polling the node's wsrep status.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hastack.lab import runtime, system
from hastack.lab.plan import LAB_ROOT, LabPlan
from hastack.lab.state import LabState
from hastack.lab.system import in_netns, run

JOIN_TIMEOUT = 90.0


def cnf(host: str) -> str:
    return f"{LAB_ROOT}/{host}/etc/mariadb.cnf"


def mysqld_argv(host: str, *extra: str) -> tuple[str, ...]:
    return ("/usr/sbin/mariadbd", f"--defaults-file={cnf(host)}", *extra)


def _own_dirs(host: str) -> None:
    """The node's state and run directories belong to the mysql user, which mariadbd switches to."""
    for sub in ("state", "run", "state/mysql"):
        path = Path(LAB_ROOT) / host / sub
        path.mkdir(parents=True, exist_ok=True)
        for item in (path, *path.rglob("*")) if sub == "state/mysql" else (path,):
            shutil.chown(item, "mysql", "mysql")


def literal(value: str) -> str:
    """`value` as a MariaDB string literal: a quote or backslash in a password cannot end it early."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def sql(lab: LabPlan, host: str, statement: str, timeout: float = 10) -> str:
    """Run SQL as root over the node's local socket; the output, tab-separated, without headers. The
    statement goes on stdin: it may hold a password."""
    argv = ["mariadb", f"--defaults-file={cnf(host)}", "-N", "-B"]
    return run(in_netns(lab.host(host).netns, argv), timeout=timeout, stdin=statement).stdout


def status(lab: LabPlan, host: str) -> dict[str, str]:
    """The node's wsrep status variables; {} if it does not answer."""
    try:
        out = sql(lab, host, "SHOW GLOBAL STATUS LIKE 'wsrep_%'", timeout=5)
    except system.LabError:
        return {}
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def is_synced(lab: LabPlan, host: str, cluster_size: int) -> bool:
    s = status(lab, host)
    return (
        s.get("wsrep_local_state_comment") == "Synced" and int(s.get("wsrep_cluster_size", 0)) >= cluster_size
    )


def ensure(lab: LabPlan, state: LabState, progress: system.Progress) -> None:
    """Bring every database node up: a new cluster, a whole-cluster restart, or dead nodes rejoining."""
    hosts = lab.deployment.hosts_of("database")
    if not hosts:
        return
    for host in hosts:
        _own_dirs(host)
    alive = [h for h in hosts if runtime.running(state, "mariadb", h)]
    if not alive and all((_datadir(h) / "gvwstate.dat").exists() for h in hosts):
        # Every node crashed while in a primary component: start each as its unit would, and
        # pc.recovery forms that component again (no bootstrap by hand).
        progress(f"galera: every node down; restarting {', '.join(hosts)} from their saved primary component")
        for host in hosts:
            start(lab, state, host)
        _wait_synced(lab, hosts[0], len(hosts))
        return
    if not alive:
        _bootstrap(lab, state, progress, hosts)
        alive = [h for h in hosts if runtime.running(state, "mariadb", h)]
    for host in hosts:
        if host in alive:
            continue
        position = start(lab, state, host)
        how = f"from {position} (IST if the donor still has it)" if position else "(state transfer by rsync)"
        progress(f"galera: {host} joins {how}")
        alive.append(host)
        _wait_synced(lab, host, len(alive))


def start(lab: LabPlan, state: LabState, host: str) -> str:
    """Start the node as Debian's mariadb unit does: its ExecStartPre (`galera_recovery`) finds the position
    InnoDB committed, and the server starts from it. The position ("" for an empty node)."""
    position = recover_position(lab, host)
    extra = (f"--wsrep-start-position={position}",) if position else ()
    runtime.launch(lab, state, "mariadb", host, mysqld_argv(host, *extra))
    return position


def _bootstrap(lab: LabPlan, state: LabState, progress: system.Progress, hosts: tuple[str, ...]) -> None:
    """No node runs: start a new cluster on a fresh first node, or on the node that committed the most."""
    first = hosts[0]
    if not (_datadir(first) / "mysql").exists():
        progress(f"galera: initialising the data directory on {first}")
        run(
            [
                "mariadb-install-db",
                f"--defaults-file={cnf(first)}",
                "--user=mysql",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
            ],
            timeout=120,
        )
        progress(f"galera: bootstrapping a new cluster on {first}")
        runtime.launch(lab, state, "mariadb", first, mysqld_argv(first, "--wsrep-new-cluster"))
    else:
        positions = {h: recover_position(lab, h) for h in hosts if (_datadir(h) / "grastate.dat").exists()}
        best = max(positions, key=lambda h: _seqno(positions[h]))
        progress(
            f"galera: whole-cluster restart from {best}, the highest committed position {positions[best]}"
        )
        _mark_safe_to_bootstrap(best)
        extra = (f"--wsrep-start-position={positions[best]}",) if positions[best] else ()
        runtime.launch(lab, state, "mariadb", best, mysqld_argv(best, "--wsrep-new-cluster", *extra))
        first = best
    system.poll(f"galera on {first} to be Synced", lambda: is_synced(lab, first, 1), JOIN_TIMEOUT, 0.2)
    _users(lab, first)


def _datadir(host: str) -> Path:
    return Path(LAB_ROOT) / host / "state" / "mysql"


def recover_position(lab: LabPlan, host: str) -> str:
    """`uuid:seqno` the node's InnoDB committed, by `mariadbd --wsrep-recover` ("" for an empty node)."""
    if not (_datadir(host) / "mysql").exists():
        return ""
    out = run(
        in_netns(lab.host(host).netns, [*mysqld_argv(host), "--wsrep-recover", "--disable-log-error"]),
        timeout=120,
    )
    for line in (out.stderr + out.stdout).splitlines():
        if "WSREP: Recovered position:" in line:
            return line.split("Recovered position:", 1)[1].strip()
    return ""


def _seqno(position: str) -> int:
    return int(position.rsplit(":", 1)[1]) if ":" in position else -1


def _mark_safe_to_bootstrap(host: str) -> None:
    grastate = _datadir(host) / "grastate.dat"
    text = grastate.read_text()
    grastate.write_text(text.replace("safe_to_bootstrap: 0", "safe_to_bootstrap: 1"))


def _wait_synced(lab: LabPlan, host: str, cluster_size: int) -> None:
    system.poll(f"galera on {host} to join", lambda: is_synced(lab, host, cluster_size), JOIN_TIMEOUT, 0.2)


def _users(lab: LabPlan, host: str) -> None:
    """Accounts the lab's clients need; idempotent, replicated to the joiners by Galera."""
    s = lab.deployment.inventory.secrets
    pw, check_user = literal(s.db_password), literal(s.db_check_user)
    sql(
        lab,
        host,
        "; ".join(
            [
                f"CREATE USER IF NOT EXISTS {check_user}@'%'",
                "CREATE DATABASE IF NOT EXISTS keystone",
                f"CREATE USER IF NOT EXISTS 'keystone'@'%' IDENTIFIED BY {pw}",
                "GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'%'",
                "CREATE DATABASE IF NOT EXISTS hastack",
                f"CREATE USER IF NOT EXISTS 'hastack'@'%' IDENTIFIED BY {pw}",
                "GRANT ALL PRIVILEGES ON hastack.* TO 'hastack'@'%'",
            ]
        ),
    )
