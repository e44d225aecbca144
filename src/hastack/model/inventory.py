"""The inventory schema: one YAML document that describes a whole deployment.

Structure, types and ranges are checked here by pydantic; rules that relate several fields (duplicate
names, a VIP outside its network, the timing rule, port clashes...) live in `checks.py`, which reports every
problem at once. All models are frozen: the inventory crosses module boundaries unchanged.
"""

from __future__ import annotations

import string
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from hastack.catalog import Role

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]


def _written_as_text(value: object) -> object:
    """pydantic takes a number (or `true`) for an address: 1 would be 0.0.0.1. The inventory spells them."""
    if isinstance(value, bool | int | float):
        raise ValueError("must be written as text, like 10.0.0.1 or 10.0.0.0/24")
    return value


Address = Annotated[IPv4Address, BeforeValidator(_written_as_text)]
Network = Annotated[IPv4Network, BeforeValidator(_written_as_text)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Host(Frozen):
    name: Name
    address: Address
    roles: tuple[Role, ...] = Field(min_length=1)
    interface: str = Field(default="eth0", pattern=r"^[a-zA-Z0-9_.-]{1,15}$")


class Vip(Frozen):
    """A virtual IP held by keepalived on one of the load-balancer hosts."""

    address: Address
    network: str = "management"
    vrid: int = Field(default=51, ge=1, le=255)


class Placement(Frozen):
    """Where a component runs: explicit `hosts`, or the first `replicas` hosts that hold its role."""

    replicas: int | None = Field(default=None, ge=1)
    hosts: tuple[Name, ...] | None = None
    port: int | None = Field(default=None, ge=1, le=65535)


class Timing(Frozen):
    """The knobs that set how fast failures are seen and how long a node may act on a stale lease.

    The rules that tie them are in `checks.timing_problems`; `hastack inventory check` explains a breach.
    """

    health_check_interval_ms: int = Field(default=200, ge=10, le=60_000)
    health_check_fall: int = Field(default=2, ge=1, le=100)
    health_check_rise: int = Field(default=2, ge=1, le=100)
    health_check_timeout_ms: int = Field(default=250, ge=10, le=60_000)
    # HAProxy `timeout server` for the HTTP APIs: a replica silent this long (frozen, say) is given up on,
    # and an idempotent request is retried on another. Keep it above the slowest legitimate response.
    api_response_timeout_ms: int = Field(default=2_000, ge=100, le=3_600_000)
    # The same for issuing a Keystone token (POST /v3/auth/tokens): the password is checked with bcrypt,
    # which took 1.2-1.7 s on a loaded 2-core lab host, near the 2 s above.
    token_issue_timeout_ms: int = Field(default=15_000, ge=100, le=3_600_000)
    # The same for Neutron's API, whose router and port changes take seconds on a loaded server.
    network_api_timeout_ms: int = Field(default=60_000, ge=100, le=3_600_000)
    # HAProxy `timeout connect`: a server that does not answer a SYN this long (its host cut) is given up on
    # and the request goes to another. Nothing was sent yet, so any request may be retried; on a LAN a
    # handshake takes well under a millisecond, and the default 1 s of most configs is what a request in
    # flight to a cut host then costs.
    backend_connect_timeout_ms: int = Field(default=250, ge=10, le=60_000)
    vrrp_advert_interval_s: float = Field(default=0.1, ge=0.01, le=40.95)
    lease_ttl_s: int = Field(default=1, ge=1, le=3600)
    heartbeat_interval_ms: int = Field(default=200, ge=10, le=60_000)
    fence_margin_ms: int = Field(default=100, ge=0, le=60_000)
    controller_tick_ms: int = Field(default=100, ge=10, le=60_000)
    # Grants from a majority of controllers (DESIGN-fencing.md): a node's gates also need, every
    # `grant_interval_ms`, grants from a majority of the controllers, each good for `grant_ms` less
    # `grant_margin_ms`; a node silent for `grant_ms` + `grant_margin_ms` loses its routers without
    # waiting for its etcd lease. 0 turns them off; they are on only with three controllers or more.
    grant_ms: int = Field(default=250, ge=0, le=60_000)
    grant_interval_ms: int = Field(default=50, ge=10, le=10_000)
    grant_margin_ms: int = Field(default=50, ge=10, le=10_000)
    etcd_heartbeat_ms: int = Field(default=50, ge=10, le=5_000)
    etcd_election_timeout_ms: int = Field(default=500, ge=50, le=50_000)
    galera_keepalive_period_ms: int = Field(default=500, ge=100)
    galera_inactive_check_period_ms: int = Field(default=500, ge=100)
    galera_suspect_timeout_ms: int = Field(default=2_000, ge=100)
    galera_inactive_timeout_ms: int = Field(default=4_000, ge=100)
    galera_install_timeout_ms: int = Field(default=4_000, ge=100)


class Secrets(Frozen):
    """Credentials the rendered configs need. The defaults are for the lab only: set your own."""

    rabbitmq_user: str = "hastack"
    rabbitmq_password: str = "hastack-lab"
    erlang_cookie: str = Field(default="HASTACKLABCOOKIE", pattern=r"^[A-Za-z0-9]{8,255}$")
    db_check_user: str = "haproxy_check"
    db_password: str = "hastack-lab"
    keystone_admin_password: str = "hastack-lab"
    neutron_password: str = "hastack-lab"  # Keystone user `neutron` of Neutron's servers and agents
    # `hastack ctl` and the failsafe rounds; it travels in an HTTP header: printable ASCII, no space.
    controller_token: str = Field(default="hastack-lab-token", pattern=r"^[!-~]{8,}$")


def lab_default_secrets(secrets: Secrets) -> list[str]:
    """The secrets still at the lab's defaults, which anyone who read this file knows. Pure."""
    defaults = Secrets()
    return [
        f"secrets.{name}"
        for name in (
            "rabbitmq_password",
            "erlang_cookie",
            "db_password",
            "keystone_admin_password",
            "neutron_password",
            "controller_token",
        )
        if getattr(secrets, name) == getattr(defaults, name)
    ]


class Paths(Frozen):
    """Where daemons keep state and runtime files; `{host}` is replaced by the host's name."""

    state_dir: str = "/var/lib/hastack/{host}"
    run_dir: str = "/run/hastack/{host}"
    config_dir: str = "/etc/hastack/{host}"
    hastack_bin: str = "/usr/local/bin/hastack"
    inventory: str = "/etc/hastack/inventory.yaml"
    # The deployment's CA and certificates (`hastack pki` makes them): ca.pem, HOST.pem, client.pem...
    pki_dir: str = Field(default="/etc/hastack/pki", pattern=r"^/[^{}]*$")

    @field_validator("state_dir", "run_dir", "config_dir")
    @classmethod
    def _host_template(cls, value: str) -> str:
        try:
            parts = [
                (f, spec, conv) for _text, f, spec, conv in string.Formatter().parse(value) if f is not None
            ]
        except ValueError as e:
            raise ValueError(f"braces must pair up as in {{host}}: {e}") from e
        if any(part != ("host", "", None) for part in parts):
            raise ValueError("{host} is the only placeholder (write {{ and }} for a brace)")
        if not value.startswith("/"):
            raise ValueError("must be an absolute path")
        return value


class Tls(Frozen):
    """Transport security of hastack's control channels."""

    # etcd: TLS for clients and peers, and only clients with a certificate of the deployment's CA. Off
    # only for a store that is protected otherwise (a private network with nothing else on it).
    etcd: bool = True
    # The controllers' API on HTTPS with each host's certificate (the token goes in clear otherwise).
    api: bool = True
    # HAProxy's runtime API, where the controllers drain and enable servers: behind TLS that HAProxy itself
    # terminates, for clients with a certificate of the deployment's CA only (it has no login of its own).
    runtime_api: bool = True


class ControllerApi(Frozen):
    """Who may read the controllers' HTTP API without the token (`/health` and `/leader` always may)."""

    # E.g. ["/metrics"] for a Prometheus that scrapes without a token. None by default: `/status` and
    # `/history` say where every router is and what the controllers did.
    open_reads: tuple[Literal["/status", "/history", "/metrics"], ...] = ()


class NetworkService(Frozen):
    """The network service whose L3 agents hastack's node agents guard and whose routers the controller
    moves: a real Neutron, or the lab's own network service (what `lab up` writes in its inventory)."""

    backend: Literal["neutron", "lab"] = "neutron"
    # Neutron reached as this clouds.yaml entry (its auth, region, endpoint and CA certificate), from
    # `clouds_yaml` or where openstacksdk looks (OS_CLIENT_CONFIG_FILE, /etc/openstack/clouds.yaml). Without
    # it, as the deployment's admin through its own Keystone.
    cloud: str | None = Field(default=None, min_length=1, pattern=r"^[\x21-\x7e]+$")
    clouds_yaml: str | None = Field(default=None, pattern=r"^/")
    # The CA bundle Keystone's and Neutron's HTTPS certificates are checked against (else the system's).
    ca_bundle: str | None = Field(default=None, pattern=r"^/")


class Lab(Frozen):
    """What `hastack lab up` builds around the hosts: address ranges and the tenant workload."""

    external_cidr: Network = IPv4Network("10.244.0.0/24")
    tenant_cidr: Network = IPv4Network("10.245.0.0/16")
    tenant_prefix: int = Field(default=24, ge=16, le=29)
    tenant_networks: int = Field(default=6, ge=0, le=4096)
    routers: int = Field(default=6, ge=0, le=4096)
    vms: int = Field(default=54, ge=0, le=10_000)
    # Every network node guarded by a node agent also builds the routers bound elsewhere, behind a shut
    # gate: a failover opens a standby instead of building a router (policy hastack only).
    standby_routers: bool = True
    # `lab`: the lab's own L3 agents and network service; `openstack`: real Neutron (server, OVS, L3 and
    # DHCP agents) on the same hosts. `hastack lab up --profile` overrides it.
    profile: Literal["lab", "openstack"] = "lab"


class Inventory(Frozen):
    deployment: Name
    networks: dict[Name, Network] = Field(min_length=1)
    hosts: tuple[Host, ...] = Field(min_length=1)
    vips: dict[Name, Vip] = Field(default_factory=dict)
    components: dict[str, Placement] = Field(default_factory=dict)
    timing: Timing = Timing()
    secrets: Secrets = Secrets()
    # Where the secrets came from when the inventory gave `secrets_file:` (as given: relative to the
    # inventory's directory, or absolute). The loader reads the file into `secrets`; this only says where it
    # lives, for the units that hand it to a daemon. Never dumped: a dumped inventory carries its secrets.
    secrets_file: str | None = Field(default=None, exclude=True)
    paths: Paths = Paths()
    tls: Tls = Tls()
    controller_api: ControllerApi = ControllerApi()
    network_service: NetworkService = NetworkService()
    lab: Lab = Lab()

    @field_validator("components", mode="before")
    @classmethod
    def _empty_placement(cls, value: object) -> object:
        """`keystone:` with no value means "on every host with the component's role"."""
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value
