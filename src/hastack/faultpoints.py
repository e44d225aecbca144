"""Fault points: named places in hastack's daemons where a test stops the process for real.

`HASTACK_FAULT_POINTS="gate-write=6,gate-written=6"` makes the process send itself SIGSTOP the 6th time
it passes each named point (a test then waits, looks at the kernel, and sends SIGCONT). Unset, as in
production, a fault point costs a function call. Points in the node agent: `gate-write` (a refresh's
timeout is computed, the kernel not yet written) and `gate-written` (written, not yet checked for a
stall).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping

FaultPoint = Callable[[str], None]
VARIABLE = "HASTACK_FAULT_POINTS"


def none(_point: str) -> None:
    """No fault anywhere."""


def parse(spec: str) -> dict[str, int]:
    """`name=N,...` -> {name: N}; ValueError naming what is wrong. Pure."""
    points = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition("=")
        if not name or not count.isdigit() or int(count) < 1:
            raise ValueError(f"{VARIABLE}: {item!r} is not NAME=N with N >= 1")
        points[name] = int(count)
    return points


def from_environment(environ: Mapping[str, str] = os.environ) -> FaultPoint:
    """The fault points the environment asks for (none when unset)."""
    wanted = parse(environ.get(VARIABLE, ""))
    if not wanted:
        return none
    passed: dict[str, int] = {}

    def point(name: str) -> None:
        if name in wanted:
            passed[name] = passed.get(name, 0) + 1
            if passed[name] == wanted[name]:
                os.kill(os.getpid(), signal.SIGSTOP)

    return point
