"""Where everything is: the addresses, URLs, ports and per-host paths of a deployment. Pure.

The one home of these facts: the renderers write them into configuration, the store client, the
controller, the backends and the lab reach services by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from hastack.model.checks import resolve_unchecked
from hastack.model.deployment import Deployment

MONITOR_PORT = 8404  # HAProxy's `monitor-uri`, which keepalived checks
RUNTIME_PORT = 8405  # HAProxy's runtime API on the management address, for the hastack controller


@dataclass(frozen=True)
class HostDirs:
    state: str
    run: str
    config: str


def host_dirs(dep: Deployment, host: str) -> HostDirs:
    p = dep.inventory.paths
    return HostDirs(
        state=p.state_dir.format(host=host),
        run=p.run_dir.format(host=host),
        config=p.config_dir.format(host=host),
    )


def haproxy_config_path(dep: Deployment, host: str) -> str:
    return f"{host_dirs(dep, host).config}/haproxy.cfg"


def _etcd_scheme(dep: Deployment) -> str:
    return "https" if dep.inventory.tls.etcd else "http"


def etcd_client_url(dep: Deployment, host: str) -> str:
    return f"{_etcd_scheme(dep)}://{dep.host(host).address}:{dep.ports('etcd')[0]}"


def etcd_peer_url(dep: Deployment, host: str) -> str:
    return f"{_etcd_scheme(dep)}://{dep.host(host).address}:{dep.ports('etcd')[1]}"


def etcd_endpoints(dep: Deployment) -> list[str]:
    """`address:port` of every etcd member, as hastack's store client takes them."""
    return [f"{dep.host(h).address}:{dep.ports('etcd')[0]}" for h in dep.hosts_of("etcd")]


def database_address(dep: Deployment) -> str:
    """Where clients reach the database: the VIP when HAProxy fronts Galera, else the first DB host."""
    if "database" in dep.load_balanced() and dep.vip_addresses():
        return str(dep.vip_addresses()[0])
    return str(dep.host(dep.hosts_of("database")[0]).address)


def keystone_url(dep: Deployment) -> str:
    """The identity endpoint clients use: through the VIP when Keystone is load-balanced."""
    port = dep.port("keystone")
    if "keystone" in dep.load_balanced() and dep.vip_addresses():
        return f"http://{dep.vip_addresses()[0]}:{port}/v3"
    return f"http://{dep.host(dep.hosts_of('keystone')[0]).address}:{port}/v3"


@dataclass(frozen=True)
class GrantTiming:
    """Grants from a majority of controllers, in seconds (DESIGN-fencing.md)."""

    grant_s: float  # G: how long a grant lasts, counted from the node's send
    interval_s: float  # h: between a node's rounds
    margin_s: float  # m

    @property
    def silent_s(self) -> float:
        """G + m: after this long without a grant, a controller may promise to grant a node no more."""
        return self.grant_s + self.margin_s


MIN_GRANTING_CONTROLLERS = 3  # with fewer, one controller's restart would shut every gate


def grant_timing(dep: Deployment) -> GrantTiming | None:
    """The grants' timing, or None where they are off (`timing.grant_ms` 0, or too few controllers)."""
    t = dep.inventory.timing
    if t.grant_ms == 0 or len(dep.hosts_of("hastack-controller")) < MIN_GRANTING_CONTROLLERS:
        return None
    return GrantTiming(t.grant_ms / 1000, t.grant_interval_ms / 1000, t.grant_margin_ms / 1000)


def grant_address(dep: Deployment, host: str) -> tuple[str, int]:
    """Where controller `host` answers grant rounds and promise requests (UDP)."""
    return str(dep.host(host).address), dep.ports("hastack-controller")[1]


def rabbitmq_node(host: str) -> str:
    """The Erlang node name of RabbitMQ on `host`."""
    return f"rabbit@{host}"


# The controller's credentials as systemd's LoadCredential= names them in its credentials directory: the
# inventory, its secrets file, the deployment's certificates and keys (by the PKI's own file names), and
# Neutron's clouds.yaml and CA bundle. The controller, run as a dynamic user, reads them only from there.
INVENTORY_CREDENTIAL, SECRETS_CREDENTIAL = "inventory.yaml", "secrets.yaml"
CLOUDS_CREDENTIAL, CA_BUNDLE_CREDENTIAL = "clouds.yaml", "ca-bundle.pem"


def controller_credentials(dep: Deployment, host: str) -> dict[str, str]:
    """Credential name -> the file on `host` it is loaded from: everything the controller reads that only
    root may read."""
    inv = dep.inventory
    files = {INVENTORY_CREDENTIAL: inv.paths.inventory}
    if inv.secrets_file is not None:
        files[SECRETS_CREDENTIAL] = str(PurePosixPath(inv.paths.inventory).parent / inv.secrets_file)
    pki = PurePosixPath(inv.paths.pki_dir)
    names = ["ca.pem"] if inv.tls.etcd or inv.tls.api or inv.tls.runtime_api else []
    names += ["client.pem", "client-key.pem"] if inv.tls.etcd or inv.tls.runtime_api else []
    names += [f"{host}.pem", f"{host}-key.pem"] if inv.tls.api else []
    files.update({name: str(pki / name) for name in names})
    service = inv.network_service
    if service.clouds_yaml is not None:
        files[CLOUDS_CREDENTIAL] = service.clouds_yaml
    if service.ca_bundle is not None:
        files[CA_BUNDLE_CREDENTIAL] = service.ca_bundle
    return files


def with_credentials(dep: Deployment, directory: str) -> Deployment:
    """`dep` as a daemon sees it that reads its credentials from `directory`: the certificates, keys and
    Neutron's files there, under the names `controller_credentials` gives them."""
    inv = dep.inventory
    service = inv.network_service.model_copy(
        update={
            "clouds_yaml": f"{directory}/{CLOUDS_CREDENTIAL}" if inv.network_service.clouds_yaml else None,
            "ca_bundle": f"{directory}/{CA_BUNDLE_CREDENTIAL}" if inv.network_service.ca_bundle else None,
        }
    )
    paths = inv.paths.model_copy(update={"pki_dir": directory})
    return resolve_unchecked(inv.model_copy(update={"paths": paths, "network_service": service}))
