"""A real node agent process stopped at its fault points (SIGSTOP, for real), on real etcd and a real
router namespace: what the kernel does while the agent cannot run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hastack.backends import LabNetworkBackend
from hastack.store import EtcdStore
from tests.contract.agent_process import DEPLOYMENT, HOST, ROUTER
from tests.contract.test_gate import _forwards, router  # noqa: F401 (router is a fixture)

ROOT = Path(__file__).resolve().parents[2]


def stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def wait_for(what: str, check: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def agent(etcd_endpoint: str, router: str) -> Iterator[subprocess.Popen[str]]:  # noqa: F811
    from hastack.agent import gate

    gate.install(router)
    backend = LabNetworkBackend(EtcdStore([etcd_endpoint]), DEPLOYMENT, time.time, agent_down_s=3.0)
    backend.report(HOST)
    backend.define_router(ROUTER, "{}", HOST)
    env = {**os.environ, "HASTACK_FAULT_POINTS": "gate-write=6,gate-written=6", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.contract.agent_process", etcd_endpoint, router],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def test_an_agent_stalled_between_computing_a_refresh_and_writing_it_opens_nothing_late(
    agent: subprocess.Popen[str],
) -> None:
    wait_for("the gate to open", _forwards)
    wait_for("the agent to stop before its 6th write", lambda: stopped(agent.pid))
    time.sleep(1.5)  # longer than the lease: a successor could have taken the router over by now
    os.kill(agent.pid, signal.SIGCONT)  # it writes the refresh it computed before the stall...
    wait_for("the agent to stop right after that write", lambda: stopped(agent.pid))
    # ...and stops before it can check for the stall: only the kernel stands between the stale timeout
    # and a router forwarding on a lease that ended.
    assert not _forwards()
    os.kill(agent.pid, signal.SIGCONT)
    wait_for("the gate to open again on a fresh keepalive", _forwards)
