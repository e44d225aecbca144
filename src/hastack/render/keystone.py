"""keystone.conf for a controller: the database through the VIP, fernet tokens whose keys every replica
shares, and an in-process cache (without it a worker served ~13 req/s on this machine kind, with it 80-95).
Pure."""

from __future__ import annotations

from hastack.model import Deployment
from hastack.model.endpoints import database_address, host_dirs
from hastack.render.common import header


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
