"""Where the controllers' API is: every controller host's URL, https while `tls.api` is on. Pure."""

from __future__ import annotations

from hastack.model import Deployment


def controller_url(dep: Deployment, host: str) -> str:
    scheme = "https" if dep.inventory.tls.api else "http"
    return f"{scheme}://{dep.host(host).address}:{dep.port('hastack-controller')}"


def controller_urls(dep: Deployment) -> list[str]:
    return [controller_url(dep, h) for h in dep.hosts_of("hastack-controller")]
