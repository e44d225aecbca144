"""Shared by the contract suites: a real etcd on loopback, started once per test session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hastack import pki
from hastack.pki import Layout
from hastack.store import EtcdStore, MemoryStore, Store, StoreError
from hastack.store.etcd import ClientTls


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _etcd(tmp: Path, tls: Layout | None) -> Iterator[str]:
    """A one-member etcd on loopback for the session; with `tls`, HTTPS and client certificates only."""
    binary = shutil.which("etcd")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("etcd is missing: scripts/setup.sh must install it")
        pytest.skip("etcd is not installed")
    client, peer = free_port(), free_port()
    scheme = "https" if tls else "http"
    security: list[str] = []
    if tls is not None:
        pki.ensure("contract", [("t", "127.0.0.1")], tls)
        for side in ("", "peer-"):
            security += [
                f"--{side}cert-file",
                str(tls.host_cert("t")),
                f"--{side}key-file",
                str(tls.host_key("t")),
                f"--{side}trusted-ca-file",
                str(tls.ca),
                f"--{side}client-cert-auth",
            ]
    proc = subprocess.Popen(
        [
            binary,
            "--name",
            "t",
            "--data-dir",
            str(tmp / "data"),
            "--listen-client-urls",
            f"{scheme}://127.0.0.1:{client}",
            "--advertise-client-urls",
            f"{scheme}://127.0.0.1:{client}",
            "--listen-peer-urls",
            f"{scheme}://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"{scheme}://127.0.0.1:{peer}",
            "--initial-cluster",
            f"t={scheme}://127.0.0.1:{peer}",
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
            "--log-level",
            "error",
            *security,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"127.0.0.1:{client}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            EtcdStore([endpoint], tls=client_tls(tls)).get("ready")
            break
        except StoreError:
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client_tls(layout: Layout | None) -> ClientTls | None:
    return None if layout is None else layout.client_tls()


@pytest.fixture(scope="session")
def etcd_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _etcd(tmp_path_factory.mktemp("etcd"), None)


@pytest.fixture(scope="session")
def etcd_tls_layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return Layout(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def etcd_tls_endpoint(tmp_path_factory: pytest.TempPathFactory, etcd_tls_layout: Layout) -> Iterator[str]:
    """The same etcd as the deployment runs it: TLS, and only clients with a certificate of its CA."""
    yield from _etcd(tmp_path_factory.mktemp("etcd-tls"), etcd_tls_layout)


@dataclass
class Backend:
    store: Store
    advance: Callable[[float], None]  # let time pass: real sleep for etcd, a clock step for memory


@pytest.fixture(params=["memory", "etcd", "etcd-tls"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        now = [1000.0]
        store = MemoryStore(clock=lambda: now[0])

        def step(seconds: float) -> None:
            now[0] += seconds

        return Backend(store, step)
    if request.param == "etcd":
        return Backend(EtcdStore([request.getfixturevalue("etcd_endpoint")]), time.sleep)
    tls = client_tls(request.getfixturevalue("etcd_tls_layout"))
    return Backend(EtcdStore([request.getfixturevalue("etcd_tls_endpoint")], tls=tls), time.sleep)
