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


def sql(p: LabPlan, host: str, statement: str, timeout: float = 10) -> str:
    """Run SQL as root over the node's local socket; the output, tab-separated, without headers."""
    argv = ["mariadb", f"--defaults-file={cnf(host)}", "-N", "-B", "-e", statement]
    return run(in_netns(p.host(host).netns, argv), timeout=timeout).stdout


def status(p: LabPlan, host: str) -> dict[str, str]:
    """The node's wsrep status variables; {} if it does not answer."""
    try:
        out = sql(p, host, "SHOW GLOBAL STATUS LIKE 'wsrep_%'", timeout=5)
    except system.LabError:
        return {}
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def is_synced(p: LabPlan, host: str, cluster_size: int) -> bool:
    s = status(p, host)
    return (
        s.get("wsrep_local_state_comment") == "Synced" and int(s.get("wsrep_cluster_size", 0)) >= cluster_size
    )


def ensure(p: LabPlan, state: LabState, progress: system.Progress) -> None:
    hosts = p.deployment.hosts_of("database")
    if not hosts:
        return
    first, *others = hosts
    datadir = Path(LAB_ROOT) / first / "state" / "mysql"
    for host in hosts:
        _own_dirs(host)
    if runtime.running(state, "mariadb", first) is None:
        if not (datadir / "mysql").exists():
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
        runtime.launch(p, state, "mariadb", first, mysqld_argv(first, "--wsrep-new-cluster"))
    system.poll(f"galera on {first} to be Synced", lambda: is_synced(p, first, 1), JOIN_TIMEOUT, 0.2)
    _users(p, first)
    for i, host in enumerate(others, start=2):
        if runtime.running(state, "mariadb", host) is None:
            progress(f"galera: {host} joins (state transfer by rsync)")
            runtime.launch(p, state, "mariadb", host, mysqld_argv(host))
        _wait_synced(p, host, i)


def _wait_synced(p: LabPlan, host: str, cluster_size: int) -> None:
    system.poll(f"galera on {host} to join", lambda: is_synced(p, host, cluster_size), JOIN_TIMEOUT, 0.2)


def _users(p: LabPlan, host: str) -> None:
    """Accounts the lab's clients need; idempotent, replicated to the joiners by Galera."""
    s = p.deployment.inventory.secrets
    pw = s.db_password.replace("'", "''")
    sql(
        p,
        host,
        "; ".join(
            [
                f"CREATE USER IF NOT EXISTS '{s.db_check_user}'@'%'",
                "CREATE DATABASE IF NOT EXISTS keystone",
                f"CREATE USER IF NOT EXISTS 'keystone'@'%' IDENTIFIED BY '{pw}'",
                "GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'%'",
                "CREATE DATABASE IF NOT EXISTS hastack",
                f"CREATE USER IF NOT EXISTS 'hastack'@'%' IDENTIFIED BY '{pw}'",
                "GRANT ALL PRIVILEGES ON hastack.* TO 'hastack'@'%'",
            ]
        ),
    )
