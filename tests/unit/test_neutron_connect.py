"""How the Neutron backend reaches Neutron: the deployment's own Keystone, or a clouds.yaml entry, with the
CA bundle the inventory names. openstacksdk makes no request until the first call, so this is checked on
the connection's configuration and session."""

from __future__ import annotations

from pathlib import Path

import pytest

from hastack.backends import BackendError
from hastack.backends.neutron import connect
from hastack.model import Deployment
from hastack.model.endpoints import keystone_url


def _with_service(dep: Deployment, **service: str) -> Deployment:
    inventory = dep.inventory.model_copy(
        update={"network_service": dep.inventory.network_service.model_copy(update=service)}
    )
    return Deployment(inventory, dep.placements)


def test_without_a_cloud_it_is_the_deployments_admin_through_its_keystone(paper: Deployment) -> None:
    conn = connect(paper)
    assert conn.config.config["auth"]["auth_url"] == keystone_url(paper)
    assert conn.session.verify is True  # the system's CA store


def test_a_clouds_yaml_entry_and_a_ca_bundle(paper: Deployment, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n"
        "  prod:\n"
        "    auth: {auth_url: 'https://keystone.prod.example:5000/v3', username: hastack,\n"
        "           password: s3cret, project_name: service, user_domain_name: Default,\n"
        "           project_domain_name: Default}\n"
        "    region_name: RegionTwo\n"
    )
    dep = _with_service(paper, cloud="prod", clouds_yaml=str(clouds), ca_bundle=str(bundle))
    conn = connect(dep)
    assert conn.config.config["auth"]["auth_url"] == "https://keystone.prod.example:5000/v3"
    assert conn.config.get_region_name() == "RegionTwo"
    assert conn.session.verify == str(bundle)
    assert connect(_with_service(paper, ca_bundle=str(bundle))).session.verify == str(bundle)


def test_a_cloud_the_file_does_not_hold_is_one_line(paper: Deployment, tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    with pytest.raises(BackendError, match=r"network_service.cloud 'prod' in .*clouds.yaml: ") as e:
        connect(_with_service(paper, cloud="prod", clouds_yaml=str(clouds)))
    assert "\n" not in str(e.value)
