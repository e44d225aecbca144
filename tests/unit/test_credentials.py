"""The controller's credentials: what its unit hands it through systemd's LoadCredential=, and the deployment
it then sees, whose every secret, certificate and key is read from its credentials directory."""

from __future__ import annotations

from pathlib import Path

from hastack.model import load_deployment
from hastack.model.endpoints import controller_credentials, with_credentials
from hastack.model.load import dump_inventory, parse_inventory
from hastack.pki.layout import Layout
from hastack.render.systemd import render_controller_unit
from tests.unit.test_inventory_errors import OWN_SECRETS

PAPER = Path(__file__).parents[2] / "examples" / "paper.yaml"
NEUTRON = "network_service: {clouds_yaml: /etc/openstack/clouds.yaml, ca_bundle: /etc/ssl/cloud-ca.pem}\n"


def _with_secrets_file(tmp_path: Path) -> Path:
    """The paper's deployment, its secrets in a file of their own, Neutron reached through clouds.yaml."""
    (tmp_path / "secrets.yaml").write_text(OWN_SECRETS)
    (tmp_path / "secrets.yaml").chmod(0o600)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(PAPER.read_text() + NEUTRON + "secrets_file: secrets.yaml\n")
    return inventory


def test_the_controller_unit_loads_every_file_it_reads_as_a_credential(tmp_path: Path) -> None:
    dep = load_deployment(_with_secrets_file(tmp_path))
    host = dep.hosts_of("hastack-controller")[0]
    unit = render_controller_unit(dep, host)
    loaded = {
        line.removeprefix("LoadCredential=").split(":", 1)[0]: line.split(":", 1)[1]
        for line in unit.splitlines()
        if line.startswith("LoadCredential=")
    }
    assert loaded == {
        "inventory.yaml": "/etc/hastack/inventory.yaml",
        "secrets.yaml": "/etc/hastack/secrets.yaml",  # relative to the inventory, where it is installed
        "ca.pem": "/etc/hastack/pki/ca.pem",
        "client.pem": "/etc/hastack/pki/client.pem",
        "client-key.pem": "/etc/hastack/pki/client-key.pem",
        f"{host}.pem": f"/etc/hastack/pki/{host}.pem",
        f"{host}-key.pem": f"/etc/hastack/pki/{host}-key.pem",
        "clouds.yaml": "/etc/openstack/clouds.yaml",
        "ca-bundle.pem": "/etc/ssl/cloud-ca.pem",
    }
    assert "ca-key.pem" not in unit  # the CA's key stays with the operator
    assert "DynamicUser=yes" in unit.splitlines()
    assert f"--inventory %d/inventory.yaml --host {host} --credentials %d" in unit


def test_the_controller_reads_its_credentials_only_from_their_directory(tmp_path: Path) -> None:
    inventory = _with_secrets_file(tmp_path)
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "secrets.yaml").write_text(OWN_SECRETS.replace("d-own", "d-credential"))
    (creds / "secrets.yaml").chmod(0o400)
    dep = with_credentials(load_deployment(inventory, creds / "secrets.yaml"), str(creds))
    assert dep.inventory.secrets.db_password == "d-credential"
    files = Layout.of(dep)
    host = dep.hosts_of("hastack-controller")[0]
    assert {files.ca, files.client_cert, files.client_key, files.host_cert(host), files.host_key(host)} == {
        creds / name
        for name in controller_credentials(dep, host)
        if name.endswith(".pem") and "bundle" not in name
    }
    service = dep.inventory.network_service
    assert (service.clouds_yaml, service.ca_bundle) == (f"{creds}/clouds.yaml", f"{creds}/ca-bundle.pem")


def test_a_dumped_inventory_carries_its_secrets_not_where_they_came_from(tmp_path: Path) -> None:
    inv = load_deployment(_with_secrets_file(tmp_path)).inventory
    assert inv.secrets_file == "secrets.yaml"
    text = dump_inventory(inv)
    assert "secrets_file" not in text
    assert parse_inventory(text).secrets == inv.secrets
