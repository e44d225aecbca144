"""The lab's stand-in for systemd's `Restart=always` on the daemons that need it.

Runs in the background (started and recorded by `lab up`): every 100 ms, under the lab's lock, it restarts
a supervised daemon whose process has exited, with the command line it was started with. A frozen process
is alive and is left alone. Each restart is logged to LAB_ROOT/supervisor.log.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from hastack.lab import loadbalancer, procs
from hastack.lab.plan import LAB_ROOT, LabPlan, plan
from hastack.lab.state import LabState, locked
from hastack.model import load_deployment

START = {"haproxy": loadbalancer.start_haproxy, "keepalived": loadbalancer.start_keepalived}
SUPERVISED = tuple(START)
TICK_S = 0.1


def tick(p: LabPlan, state: LabState) -> list[str]:
    """Restart every supervised daemon that has exited; what was restarted, one sentence each."""
    said = []
    for rec in list(state.processes):
        if rec.name in SUPERVISED and not procs.is_alive(rec):
            START[rec.name](p, state, rec.host)
            said.append(f"restarted {rec.name} on {rec.host} (pid {rec.pid} had exited)")
    return said


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log = Path(LAB_ROOT) / "supervisor.log"
    p = plan(load_deployment(sys.argv[1]))
    while not stop.wait(TICK_S):
        with locked(blocking=False) as have_lock:
            if not have_lock:
                continue
            for sentence in tick(p, LabState.load()):
                with log.open("a") as fh:
                    fh.write(f"{time.strftime('%H:%M:%S')} {sentence}\n")


if __name__ == "__main__":
    main()
