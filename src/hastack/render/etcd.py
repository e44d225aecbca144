"""etcd's YAML configuration for a persistence host (hastack's own coordination store). Pure.

Timings come from the inventory: with `--heartbeat-interval 50 --election-timeout 500` etcd keeps a 1 s
lease TTL (its minimum is about 1.5 x the election timeout), which the node lease relies on.
"""

from __future__ import annotations

import yaml

from hastack.model import Deployment
from hastack.model.endpoints import etcd_client_url, etcd_peer_url, host_dirs
from hastack.pki.layout import Layout
from hastack.render.common import header


def _transport(dep: Deployment, host: str) -> dict[str, object]:
    """Clients and peers alike must show a certificate of the deployment's CA: without one, anybody on the
    management network could rewrite bindings, leader and node keys, bypassing the fencing."""
    if not dep.inventory.tls.etcd:
        return {}
    files = Layout.of(dep)
    security = {
        "cert-file": str(files.host_cert(host)),
        "key-file": str(files.host_key(host)),
        "client-cert-auth": True,
        "trusted-ca-file": str(files.ca),
    }
    return {"client-transport-security": security, "peer-transport-security": dict(security)}


def render_etcd(dep: Deployment, host: str) -> str:
    t = dep.inventory.timing
    config = {
        "name": host,
        "data-dir": f"{host_dirs(dep, host).state}/etcd",
        "listen-client-urls": etcd_client_url(dep, host),
        "advertise-client-urls": etcd_client_url(dep, host),
        "listen-peer-urls": etcd_peer_url(dep, host),
        "initial-advertise-peer-urls": etcd_peer_url(dep, host),
        "initial-cluster": ",".join(f"{h}={etcd_peer_url(dep, h)}" for h in dep.hosts_of("etcd")),
        "initial-cluster-state": "new",
        "initial-cluster-token": f"hastack-{dep.name}",
        "heartbeat-interval": t.etcd_heartbeat_ms,
        "election-timeout": t.etcd_election_timeout_ms,
        # A member that was cut off and comes back asks before it campaigns: without it, its higher term
        # forces an election the moment it rejoins, every lease stalls ~1 s, and a network node that
        # cannot then reach every controller for failsafe shuts its gates (the fault campaign found this:
        # all routers dark 0.9 s as an etcd member's partition healed while a controller host was cut).
        "pre-vote": True,
        # On by default as a flag, off by default in a config file: hastack's client speaks to the gateway.
        "enable-grpc-gateway": True,
        "log-level": "warn",
        "logger": "zap",
        **_transport(dep, host),
    }
    return header(dep, host) + yaml.safe_dump(config, sort_keys=False)
