"""haproxy.cfg for a load-balancer host: a frontend per API on every VIP, health-checked backends, and
Galera as one writer with backups. Pure."""

from __future__ import annotations

from hastack.catalog import component
from hastack.model import Deployment
from hastack.model.endpoints import MONITOR_PORT, RUNTIME_PORT, haproxy_config_path, host_dirs
from hastack.pki.layout import Layout
from hastack.render.common import header, ms


def haproxy_command(dep: Deployment, host: str) -> tuple[str, ...]:
    """How HAProxy is started, in the foreground (`-db`), on this host's rendered configuration."""
    return ("/usr/sbin/haproxy", "-f", haproxy_config_path(dep, host), "-db")


def render_haproxy(dep: Deployment, host: str) -> str:
    t = dep.inventory.timing
    run = host_dirs(dep, host).run
    addr = dep.host(host).address
    checks = (
        f"check inter {ms(t.health_check_interval_ms)} fastinter {ms(t.health_check_interval_ms)} "
        f"downinter {ms(t.health_check_interval_ms)} fall {t.health_check_fall} rise {t.health_check_rise}"
    )
    out = [
        header(dep, host),
        "global",
        "    log stdout format raw local0 info",
        "    maxconn 8192",
        f"    pidfile {run}/haproxy.pid",
        "    # The runtime API: hastack drains and enables servers through it.",
        f"    stats socket {run}/haproxy.sock mode 600 level admin expose-fd listeners",
        *_runtime_socket(dep, host),
        "    stats timeout 30s",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlognull",
        "    # A request that fails is retried, each time on another server, not returned as an error.",
        "    option redispatch 1",
        "    retries 3",
        "    # A server without a handshake by then (its host cut) is skipped: nothing was sent yet.",
        f"    timeout connect {ms(t.backend_connect_timeout_ms)}",
        "    timeout client 60s",
        "    timeout server 60s",
        f"    timeout check {ms(t.health_check_timeout_ms)}",
        "",
        "# keepalived's track script and operators ask here whether this HAProxy serves.",
        "frontend monitor",
        f"    bind {addr}:{MONITOR_PORT}",
        "    monitor-uri /healthz",
        "    stats enable",
        "    stats uri /stats",
        "    stats refresh 5s",
    ]
    out += _runtime_listener(dep, host)
    for name in dep.load_balanced():
        out += _database(dep, checks) if name == "database" else _http_api(dep, name, checks)
    return "\n".join(out) + "\n"


def _runtime_socket(dep: Deployment, host: str) -> list[str]:
    """The runtime API in the clear on the management address, when `tls.runtime_api` is off."""
    if dep.inventory.tls.runtime_api:
        return []
    return [
        "    # ...also on the management address, where the controllers reach it: keep this port firewalled",
        "    # to the controller hosts (the runtime API has no authentication of its own).",
        f"    stats socket ipv4@{dep.host(host).address}:{RUNTIME_PORT} level admin",
    ]


def _runtime_listener(dep: Deployment, host: str) -> list[str]:
    """The runtime API on the management address for the controllers, behind TLS with client certificates
    of the deployment's CA: HAProxy's stats sockets speak no TLS, so a TCP proxy of its own terminates it
    and passes the bytes to the local admin socket."""
    if not dep.inventory.tls.runtime_api:
        return []
    files = Layout.of(dep)
    return [
        "",
        "listen hastack-runtime-api",
        "    mode tcp",
        "    option dontlognull",
        f"    bind {dep.host(host).address}:{RUNTIME_PORT} ssl crt {files.host_bundle(host)} "
        f"ca-file {files.ca} verify required",
        "    timeout client 30s",
        "    timeout server 30s",
        f"    server local unix@{host_dirs(dep, host).run}/haproxy.sock",
    ]


def _binds(dep: Deployment, port: int) -> list[str]:
    # transparent (IP_TRANSPARENT): the VIP is here only while this host is the VRRP master, and HAProxy
    # must listen on it anyway, so that a takeover needs no reload.
    return [f"    bind {vip}:{port} transparent" for vip in dep.vip_addresses()]


def _http_api(dep: Deployment, name: str, checks: str) -> list[str]:
    comp = component(name)
    port = dep.vip_port(name)
    assert port is not None
    assert comp.health_path is not None
    out = ["", f"frontend {name}", *_binds(dep, port), f"    default_backend {name}", "", f"backend {name}"]
    t = dep.inventory.timing
    # Issuing a token (POST /v3/auth/tokens) has no effect but the token returned: it may be retried like
    # a read. On a loaded host a token takes over the 2 s timeout now and then; Neutron and the clients
    # then got a 504 where a retry on another replica answers.
    timeout, no_retry = t.api_response_timeout_ms, "METH_POST !{ path /v3/auth/tokens } || { method PATCH }"
    if name == "neutron-server":
        # Router and port changes take seconds, and its PUT actions (add_router_interface, agent
        # scheduling) are not idempotent: a retry elsewhere would do them twice.
        timeout, no_retry = t.network_api_timeout_ms, "!METH_GET !METH_HEAD"
    out += [
        "    balance roundrobin",
        "    # One request per server connection: uwsgi's --http-socket reset reused keep-alive connections.",
        "    option http-server-close",
        "    # A request whose server died mid-way (reset, empty reply, 502/503/504) or went silent (frozen:",
        "    # after `timeout server`, not after a minute) is retried on another server...",
        "    retry-on all-retryable-errors",
        f"    timeout server {ms(timeout)}",
        *_token_timeout(dep, name),
        "    # ...unless it may not be idempotent: those are retried only when the connection failed.",
        f"    http-request disable-l7-retry if {no_retry}",
        f"    option httpchk GET {comp.health_path}",
        "    # Live traffic counts too: a replica that starts failing requests is taken out at once.",
        f"    default-server {checks} observe layer7 error-limit 3 on-error mark-down",
    ]
    out += [f"    server {h} {dep.host(h).address}:{dep.port(name)}" for h in dep.hosts_of(name)]
    return out


def _token_timeout(dep: Deployment, name: str) -> list[str]:
    if name != "keystone":
        return []
    return [
        "    # A token costs a bcrypt password check, over 1 s on a loaded host: it gets longer than a read.",
        f"    http-request set-timeout server {ms(dep.inventory.timing.token_issue_timeout_ms)}"
        " if METH_POST { path /v3/auth/tokens }",
    ]


def _database(dep: Deployment, checks: str) -> list[str]:
    secrets = dep.inventory.secrets
    hosts = dep.hosts_of("database")
    out = [
        "",
        "# Galera takes writes on one node at a time: the others are backups, and the stick table keeps",
        "# every client on the node in use until it fails (no flip-back when the first one returns).",
        "listen database",
        *_binds(dep, dep.port("database")),
        "    mode tcp",
        "    option tcplog",
    ]
    out += [
        "    timeout client 90m",
        "    timeout server 90m",
        f"    option mysql-check user {secrets.db_check_user} post-41",
        "    stick-table type ip size 1 nopurge",
        "    stick on dst",
        f"    default-server {checks} on-marked-down shutdown-sessions",
    ]
    for i, h in enumerate(hosts):
        out.append(f"    server {h} {dep.host(h).address}:{dep.port('database')}{' backup' if i else ''}")
    return out
