"""Shared by the contract suites: a real etcd on loopback, started once per test session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from hastack.store import EtcdStore, MemoryStore, Store, StoreError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def etcd_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("etcd")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("etcd is missing: scripts/setup.sh must install it")
        pytest.skip("etcd is not installed")
    client, peer = free_port(), free_port()
    data = tmp_path_factory.mktemp("etcd")
    proc = subprocess.Popen(
        [
            binary,
            "--name",
            "t",
            "--data-dir",
            str(data),
            "--listen-client-urls",
            f"http://127.0.0.1:{client}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{client}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"t=http://127.0.0.1:{peer}",
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"127.0.0.1:{client}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            EtcdStore([endpoint]).get("ready")
            break
        except StoreError:
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class Backend:
    store: Store
    advance: Callable[[float], None]  # let time pass: real sleep for etcd, a clock step for memory


@pytest.fixture(params=["memory", "etcd"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        now = [1000.0]
        store = MemoryStore(clock=lambda: now[0])

        def step(seconds: float) -> None:
            now[0] += seconds

        return Backend(store, step)
    return Backend(EtcdStore([request.getfixturevalue("etcd_endpoint")]), time.sleep)
