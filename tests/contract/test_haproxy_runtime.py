"""The HAProxy runtime client against a real HAProxy on loopback: list, drain, enable."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hastack import pki
from hastack.backends import BackendError
from hastack.backends.haproxy import HAProxyRuntime
from hastack.pki import Layout
from hastack.pki.contexts import client_context
from tests.contract.conftest import free_port


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[HAProxyRuntime]:
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        pytest.fail("haproxy is missing: scripts/setup.sh must install it")
    admin, front, secure = free_port(), free_port(), free_port()
    files = Layout(tmp_path / "pki")
    pki.ensure("t", [("lb", "127.0.0.1")], files)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        f"global\n    stats socket ipv4@127.0.0.1:{admin} level admin\n"
        f"    stats socket {tmp_path / 'haproxy.sock'} mode 600 level admin\n"
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
        # The runtime API behind TLS with client certificates, as `render` writes it.
        f"listen runtime\n    mode tcp\n    bind 127.0.0.1:{secure} ssl crt {files.host_bundle('lb')} "
        f"ca-file {files.ca} verify required\n    server local unix@{tmp_path / 'haproxy.sock'}\n"
        f"frontend api\n    bind 127.0.0.1:{front}\n    default_backend keystone\n"
        "backend keystone\n    server ctl1 127.0.0.1:9 check inter 200ms\n    server ctl2 127.0.0.1:10\n"
    )
    (tmp_path / "secure-port").write_text(str(secure))
    proc = subprocess.Popen([binary, "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rt = HAProxyRuntime("127.0.0.1", admin)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                rt.servers()
                break
            except BackendError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield rt
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_drain_and_enable_a_server_whatever_its_health(runtime: HAProxyRuntime) -> None:
    rows = {(r["be_name"], r["srv_name"]): r for r in runtime.servers()}
    assert set(rows) == {("keystone", "ctl1"), ("keystone", "ctl2"), ("runtime", "local")}
    assert not any(runtime.is_drained(r) for r in rows.values())
    runtime.set_state("keystone", "ctl1", "drain")  # ctl1 is down (nothing listens): drained all the same
    rows = {r["srv_name"]: r for r in runtime.servers()}
    assert runtime.is_drained(rows["ctl1"])
    assert not runtime.is_drained(rows["ctl2"])
    assert {r["svname"] for r in runtime.stats()} == {"ctl1", "ctl2", "local"}
    runtime.set_state("keystone", "ctl1", "ready")
    assert not any(runtime.is_drained(r) for r in runtime.servers())


def test_unknown_server_and_unreachable_api_are_backend_errors(runtime: HAProxyRuntime) -> None:
    with pytest.raises(BackendError, match="No such server"):
        runtime.set_state("keystone", "ctl9", "drain")
    with pytest.raises(BackendError, match="HAProxy runtime API"):
        HAProxyRuntime("127.0.0.1", free_port(), timeout_s=0.5).servers()


def test_over_tls_only_a_client_with_a_certificate_of_the_ca_is_answered(
    runtime: HAProxyRuntime, tmp_path: Path
) -> None:
    port, files = int((tmp_path / "secure-port").read_text()), Layout(tmp_path / "pki")
    trusted = HAProxyRuntime(
        "127.0.0.1", port, tls=client_context(files.ca, (files.client_cert, files.client_key))
    )
    assert {r["srv_name"] for r in trusted.servers()} == {r["srv_name"] for r in runtime.servers()}
    trusted.set_state("keystone", "ctl2", "drain")
    assert runtime.is_drained(next(r for r in runtime.servers() if r["srv_name"] == "ctl2"))
    with pytest.raises(BackendError):  # TLS, but no client certificate
        HAProxyRuntime("127.0.0.1", port, tls=client_context(files.ca)).servers()
    other = Layout(tmp_path / "other")
    pki.ensure("intruder", [], other)
    with pytest.raises(BackendError):  # a certificate of another CA
        HAProxyRuntime(
            "127.0.0.1", port, tls=client_context(files.ca, (other.client_cert, other.client_key))
        ).servers()
    assert HAProxyRuntime("127.0.0.1", port).command("show servers state") == ""  # in the clear: nothing


def test_the_unix_socket_answers_like_the_tcp_one(runtime: HAProxyRuntime, tmp_path: Path) -> None:
    local = HAProxyRuntime(str(tmp_path / "haproxy.sock"), None)
    assert local.where == str(tmp_path / "haproxy.sock")
    assert {r["srv_name"] for r in local.servers()} == {r["srv_name"] for r in runtime.servers()}
    with pytest.raises(BackendError, match=r"nothing-here\.sock"):
        HAProxyRuntime(str(tmp_path / "nothing-here.sock"), None).servers()
