"""Where the controllers' API is, and how a client trusts it. Pure."""

from __future__ import annotations

from pathlib import Path

from hastack.model import Deployment
from hastack.pki.layout import Layout


def controller_url(dep: Deployment, host: str) -> str:
    scheme = "https" if dep.inventory.tls.api else "http"
    return f"{scheme}://{dep.host(host).address}:{dep.port('hastack-controller')}"


def controller_urls(dep: Deployment) -> list[str]:
    return [controller_url(dep, h) for h in dep.hosts_of("hastack-controller")]


def pki(dep: Deployment) -> Layout:
    return Layout(Path(dep.inventory.paths.pki_dir))
