"""The controller as its rendered unit runs it: as a user of its own, not root, reading its inventory,
secrets, certificates and keys only from a credentials directory (what systemd's LoadCredential= makes),
against a real etcd that wants client certificates. setpriv stands in for DynamicUser=: no systemd runs
here."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hastack.model import load_deployment
from hastack.model.endpoints import controller_credentials
from hastack.pki import Layout
from tests.contract.conftest import free_port

UID = 61184  # the first of the UIDs systemd gives dynamic users: no account, no file owned by it


def _unprivileged(*argv: str) -> list[str]:
    return ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", "--no-new-privs", *argv]


@pytest.fixture
def machine() -> Iterator[Path]:
    """A directory any user may enter, outside pytest's own (which only root may): the test's /etc and
    credentials directory go there."""
    directory = Path(tempfile.mkdtemp(prefix="hastack-credentials-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def _inventory(tmp: Path, etcd: str, api_port: int, pki_dir: Path) -> Path:
    etc = tmp / "etc"
    etc.mkdir(mode=0o755)
    secrets = {
        "rabbitmq_password": "creds-mq",
        "erlang_cookie": "CREDSCOOKIE0123",
        "db_password": "creds-db",
        "keystone_admin_password": "creds-ks",
        "neutron_password": "creds-net",
        "controller_token": "creds-token-0123456789",
    }
    (etc / "secrets.yaml").write_text("".join(f"{k}: {v}\n" for k, v in secrets.items()))
    inventory = etc / "inventory.yaml"
    inventory.write_text(
        "deployment: creds\n"
        "networks: {management: 127.0.0.0/24}\n"
        "hosts: [{name: t, address: 127.0.0.1, roles: [persistence, controller]}]\n"
        f"components: {{etcd: {{port: {etcd.rsplit(':', 1)[1]}}}, "
        f"hastack-controller: {{port: {api_port}}}}}\n"
        "network_service: {backend: lab}\n"
        "tls: {runtime_api: false}\n"
        f"paths: {{inventory: {inventory}, pki_dir: {pki_dir}}}\n"
        "secrets_file: secrets.yaml\n"
    )
    inventory.chmod(0o644)  # the topology may be shared; the secrets may not
    (etc / "secrets.yaml").chmod(0o600)
    return inventory


def _load_credentials(inventory: Path, into: Path) -> None:
    """As LoadCredential= does: a copy of each file, read-only, owned by the service's user."""
    into.mkdir()
    for name, source in controller_credentials(load_deployment(inventory), "t").items():
        shutil.copyfile(source, into / name)
        (into / name).chmod(0o400)
        os.chown(into / name, UID, UID)
    into.chmod(0o500)
    os.chown(into, UID, UID)


def _answers(url: str, ca: Path) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1, context=ssl.create_default_context(cafile=ca)) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def test_the_controller_leads_as_a_user_of_its_own_from_its_credentials(
    etcd_tls_endpoint: str, etcd_tls_layout: Layout, machine: Path, tmp_path: Path
) -> None:
    hastack = str(Path(sys.executable).parent / "hastack")
    if subprocess.run(_unprivileged(sys.executable, "-c", "pass"), check=False).returncode != 0:
        pytest.skip(f"{sys.executable} cannot be run by a user other than root here")
    api = free_port()
    inventory = _inventory(machine, etcd_tls_endpoint, api, etcd_tls_layout.dir)
    credentials = machine / "credentials"
    _load_credentials(inventory, credentials)
    argv = [hastack, "controller", "--inventory", str(credentials / "inventory.yaml"), "--host", "t"]

    # Without its credentials directory it cannot read the secrets: they are root's, 0600.
    refused = subprocess.run(
        _unprivileged(*argv[:3], str(inventory), *argv[4:]), capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2, refused.stderr
    assert (
        f"secrets_file: cannot read {inventory.parent / 'secrets.yaml'}: Permission denied" in refused.stderr
    )

    log = tmp_path / "controller.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            _unprivileged(*argv, "--credentials", str(credentials)), stdout=out, stderr=out
        )
    try:
        deadline, status = time.monotonic() + 30, None
        while status != 200 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            status = _answers(f"https://127.0.0.1:{api}/leader", etcd_tls_layout.ca)
        assert status == 200, log.read_text()
        proc_status = Path(f"/proc/{proc.pid}/status").read_text()
        uids = next(line.split()[1:] for line in proc_status.splitlines() if line.startswith("Uid:"))
        assert set(uids) == {str(UID)}
        cap_eff = next(line.split()[1] for line in proc_status.splitlines() if line.startswith("CapEff:"))
        assert int(cap_eff, 16) == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
