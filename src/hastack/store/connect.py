"""The deployment's etcd as hastack's processes reach it: every member's client address, over HTTPS with
the deployment's client certificate while `tls.etcd` is on (the inventory's default)."""

from __future__ import annotations

from hastack.model import Deployment
from hastack.model.endpoints import etcd_endpoints
from hastack.pki.layout import Layout
from hastack.store.etcd import ClientTls, EtcdStore


def client_tls(dep: Deployment) -> ClientTls | None:
    if not dep.inventory.tls.etcd:
        return None
    return Layout.of(dep).client_tls()


def open_store(dep: Deployment, timeout_s: float = 2.0) -> EtcdStore:
    return EtcdStore(etcd_endpoints(dep), timeout_s, client_tls(dep))
