"""The lab's stand-in for systemd on every lab host: `Restart=always` and `WatchdogSec` for the daemons whose
units ask for them (HAProxy, keepalived, hastack's node agent and controller).

Runs in the background (started and recorded by `lab up`): every 100 ms, under the lab's lock, it restarts a
supervised daemon whose process has exited, with the command line it was started with. hastack's daemons
ping WATCHDOG=1 over a NOTIFY_SOCKET per daemon; one silent for longer than its WatchdogSec gets SIGABRT
(SIGKILL a second later), as systemd does, and is restarted when it has gone. A frozen host's processes are
left alone: that host's systemd would be frozen too. Each action is logged to LAB_ROOT/supervisor.log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hastack.lab import faults, hadaemons, loadbalancer, procs
from hastack.lab.plan import LAB_ROOT, LabPlan, plan
from hastack.lab.state import LabState, ProcessRecord, locked
from hastack.model import load_deployment


def _start_hastack(name: str) -> Callable[[LabPlan, LabState, str], object]:
    return lambda p, state, host: hadaemons.start(p, state, name, host)


START: dict[str, Callable[[LabPlan, LabState, str], object]] = {
    "haproxy": loadbalancer.start_haproxy,
    "keepalived": loadbalancer.start_keepalived,
    hadaemons.AGENT: _start_hastack(hadaemons.AGENT),
    hadaemons.CONTROLLER: _start_hastack(hadaemons.CONTROLLER),
}
SUPERVISED = tuple(START)
TICK_S = 0.1
ABORT_GRACE_S = 1.0


class Watchdog:
    """The NOTIFY_SOCKET end of hastack's daemons: when each last said it was alive."""

    def __init__(self, lab: LabPlan) -> None:
        self.p = lab
        self.sockets: dict[tuple[str, str], socket.socket] = {}
        self.last: dict[tuple[str, str], float] = {}
        self.aborted: dict[tuple[str, str], float] = {}

    def listen(self, name: str, host: str) -> None:
        key = (name, host)
        if key in self.sockets:
            return
        path = hadaemons.notify_socket(name, host)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        self.sockets[key] = sock

    def drain(self, now: float) -> None:
        for key, sock in self.sockets.items():
            while True:
                try:
                    message = sock.recv(4096)
                except BlockingIOError:
                    break
                if b"WATCHDOG=1" in message or b"READY=1" in message:
                    self.last[key] = now

    def restarted(self, name: str, host: str) -> None:
        """Disarm until the new process says READY=1 or WATCHDOG=1: start-up is not watched (systemd)."""
        self.last.pop((name, host), None)
        self.aborted.pop((name, host), None)

    def enforce(self, rec: ProcessRecord, now: float) -> str | None:
        """SIGABRT a daemon silent for longer than its WatchdogSec, SIGKILL it if that did not end it."""
        key = (rec.name, rec.host)
        limit = hadaemons.watchdog_s(self.p, rec.name)
        if key not in self.last or now - self.last[key] <= limit:
            return None
        if key not in self.aborted:
            self.aborted[key] = now
            os.kill(rec.pid, signal.SIGABRT)
            return f"watchdog: {rec.name} on {rec.host} silent for {now - self.last[key]:.1f} s: SIGABRT"
        if now - self.aborted[key] > ABORT_GRACE_S:
            os.kill(rec.pid, signal.SIGKILL)
            return f"watchdog: {rec.name} on {rec.host} survived SIGABRT: SIGKILL"
        return None


def tick(lab: LabPlan, state: LabState, watchdog: Watchdog, now: float) -> list[str]:
    """Restart every supervised daemon that has exited, enforce the watchdogs; one sentence per action."""
    said = []
    frozen = {f.target for f in faults.recorded(state, None) if f.kind == "freeze-host"}
    for rec in list(state.processes):
        if rec.name not in SUPERVISED or rec.host in frozen:
            continue
        if rec.name in hadaemons.DAEMONS:
            watchdog.listen(rec.name, rec.host)
        if not procs.is_alive(rec):
            procs.reap(rec.pid)
            START[rec.name](lab, state, rec.host)
            watchdog.restarted(rec.name, rec.host)
            said.append(f"restarted {rec.name} on {rec.host} (pid {rec.pid} had exited)")
        elif rec.name in hadaemons.DAEMONS and (action := watchdog.enforce(rec, now)):
            said.append(action)
    return said


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log = Path(LAB_ROOT) / "supervisor.log"
    p = plan(load_deployment(sys.argv[1]))
    watchdog = Watchdog(p)
    while not stop.wait(TICK_S):
        watchdog.drain(time.monotonic())  # even while `lab` holds the lock: the daemons keep pinging
        with locked(blocking=False) as have_lock:
            if not have_lock:
                continue
            for sentence in tick(p, LabState.load(), watchdog, time.monotonic()):
                with log.open("a") as fh:
                    fh.write(f"{time.strftime('%H:%M:%S')} {sentence}\n")


if __name__ == "__main__":
    main()
