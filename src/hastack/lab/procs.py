"""Daemons of the lab: started inside a namespace, recorded by PID and start time, stopped by that record."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from hastack.lab.state import ProcessRecord
from hastack.lab.system import LabError, in_netns, in_netns_shared_mounts, poll


def starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its closing one.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def is_alive(rec: ProcessRecord) -> bool:
    return starttime(rec.pid) == rec.starttime and not _is_zombie(rec.pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def spawn(
    name: str,
    host: str,
    netns: str | None,
    argv: tuple[str, ...],
    log: Path,
    env: dict[str, str] | None = None,
    shared_mounts: bool = False,
) -> ProcessRecord:
    """Start `argv` in `netns` (`ip netns exec` execs into it, so the PID is the daemon's own), or in the
    root namespace when `netns` is None (the lab's own supervisor)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                _wrap(netns, argv, shared_mounts),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        except OSError as e:
            raise LabError(f"cannot start {name} on {host}: {e}") from e
    started = starttime(proc.pid)
    if started is None:
        raise LabError(f"{name} on {host} exited at once; see {log}")
    return ProcessRecord(name, host, proc.pid, started, list(argv), str(log))


def _wrap(netns: str | None, argv: tuple[str, ...], shared_mounts: bool) -> list[str]:
    if netns is None:
        return list(argv)
    return in_netns_shared_mounts(netns, argv) if shared_mounts else in_netns(netns, argv)


def record(name: str, host: str, pid: int, log: str) -> ProcessRecord | None:
    """A record of a process the lab did not spawn itself (a daemon's own daemon, like epmd)."""
    started = starttime(pid)
    if started is None:
        return None
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return ProcessRecord(name, host, pid, started, [a.decode() for a in argv if a], log, adopted=True)


def pss_bytes(pid: int) -> int:
    """The process's proportional set size (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def stop(rec: ProcessRecord, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after `timeout`; only if the PID still belongs to the process we started."""
    if not is_alive(rec):
        return
    os.kill(rec.pid, signal.SIGCONT)  # a frozen (SIGSTOPped) process cannot act on SIGTERM
    os.kill(rec.pid, signal.SIGTERM)
    try:
        poll(f"{rec.name} on {rec.host} to stop", lambda: not is_alive(rec), timeout=timeout)
    except LabError:
        os.kill(rec.pid, signal.SIGKILL)
        poll(f"{rec.name} on {rec.host} to die", lambda: not is_alive(rec), timeout=5)
    reap(rec.pid)


def kill_leftover(pid: int) -> None:
    """SIGKILL a process found in one of the lab's namespaces at teardown, and wait for it to go."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    poll(f"process {pid} to die", lambda: starttime(pid) is None or _is_zombie(pid), timeout=5)
    reap(pid)


def reap(pid: int) -> None:
    """Collect the exit status if this process is the parent, so no zombie stays behind."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
