"""What a lab that went through faults must not have left behind: namespaces nothing of the lab records,
processes recorded but gone, faults still recorded. The fault campaign checks it after its last heal."""

from __future__ import annotations

from pathlib import Path

from hastack.lab import l3agent, procs, system
from hastack.lab.plan import LAB_ROOT, PREFIX
from hastack.lab.state import LabState


def recorded_namespaces(state: LabState) -> set[str]:
    """Every namespace the lab made: its own, and the router namespaces its L3 agents record."""
    routers = {
        ns
        for record in Path(LAB_ROOT).glob("*/l3-routers.json")
        for ns in l3agent.recorded_namespaces(record.parent.name)
    }
    return set(state.namespaces) | routers


def leaks(state: LabState, present: set[str] | None = None) -> list[str]:
    """One line per thing left behind; [] if none. `present`: the namespaces that exist (default: read)."""
    names = system.netns_list() if present is None else present
    recorded = recorded_namespaces(state)  # reads every L3 agent's record: once, not once per namespace
    stray = sorted(ns for ns in names if ns.startswith(PREFIX) and ns not in recorded)
    out = [f"namespace {ns} exists, and nothing of the lab records it" for ns in stray]
    out += [
        f"{r.name} on {r.host} (pid {r.pid}) is recorded but gone"
        for r in state.processes
        if not procs.is_alive(r)
    ]
    out += [f"fault {f.get('kind', '?')} {f.get('target', '?')} still recorded" for f in state.faults]
    return out
