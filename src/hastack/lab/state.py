"""The lab's record of what it made: namespaces and processes, saved after every change.

Teardown reads only this file, so it removes exactly what `lab up` made, even after an `up` that crashed
half-way, and a second `down` finds nothing left to do.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = Path("/run/hastack-lab/state.json")
LOCK_FILE = Path("/run/hastack-lab/lock")


@contextmanager
def locked(blocking: bool = True) -> Iterator[bool]:
    """Hold the lab lock (the CLI for a whole verb, the supervisor for one tick); yields if it got it."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class ProcessRecord:
    """A process the lab started. `starttime` (clock ticks since boot, /proc/PID/stat field 22) tells it
    apart from a later process that reuses the PID, so the lab never signals a stranger."""

    name: str
    host: str
    pid: int
    starttime: int
    argv: list[str]
    log: str
    adopted: bool = False  # started by one of the lab's daemons (epmd), not by the lab itself


@dataclass
class LabState:
    deployment: str = ""
    inventory: str = ""
    namespaces: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    faults: list[dict[str, str]] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)  # hosts with a mount namespace of their own

    def save(self, path: Path = STATE_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path = STATE_FILE) -> LabState:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        procs = [ProcessRecord(**p) for p in data.pop("processes", [])]
        return cls(processes=procs, **data)

    def record_namespace(self, name: str) -> None:
        """Record a namespace the lab is about to make (before it exists: teardown never misses one)."""
        if name not in self.namespaces:
            self.namespaces.append(name)
            self.save()

    def record_mount(self, host: str) -> None:
        """Record that `host` is about to get a mount namespace of its own (profile openstack)."""
        if host not in self.mounts:
            self.mounts.append(host)
            self.save()

    @property
    def is_empty(self) -> bool:
        return not self.namespaces and not self.processes and not self.dirs and not self.mounts
