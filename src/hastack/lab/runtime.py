"""Starting the lab's daemons and finding them again: every start is recorded in the state file at once."""

from __future__ import annotations

from pathlib import Path

from hastack.lab import procs
from hastack.lab.plan import LAB_ROOT, LabPlan
from hastack.lab.state import LabState, ProcessRecord


def running(state: LabState, name: str, host: str) -> ProcessRecord | None:
    for rec in state.processes:
        if (rec.name, rec.host) == (name, host) and procs.is_alive(rec):
            return rec
    return None


def launch(
    lab: LabPlan,
    state: LabState,
    name: str,
    host: str,
    argv: tuple[str, ...],
    env: dict[str, str] | None = None,
    shared_mounts: bool = False,
) -> ProcessRecord:
    """Start `argv` as daemon `name` of `host` (unless it runs already) and record it."""
    current = running(state, name, host)
    if current is not None:
        return current
    log = Path(LAB_ROOT) / host / "log" / f"{name}.log"
    rec = procs.spawn(name, host, lab.host(host).netns, argv, log, env, shared_mounts)
    adopt(state, rec)
    return rec


def launch_wrapped(
    state: LabState, name: str, host: str, argv: list[str], env: dict[str, str] | None = None
) -> ProcessRecord:
    """Like `launch`, for an argv that enters its namespaces itself (a host's mount namespace too)."""
    current = running(state, name, host)
    if current is not None:
        return current
    log = Path(LAB_ROOT) / host / "log" / f"{name}.log"
    rec = procs.spawn(name, host, None, tuple(argv), log, env)
    adopt(state, rec)
    return rec


def adopt(state: LabState, rec: ProcessRecord) -> None:
    """Record `rec`, replacing an older record of the same daemon on the same host."""
    state.processes = [r for r in state.processes if (r.name, r.host) != (rec.name, rec.host)] + [rec]
    state.save()
