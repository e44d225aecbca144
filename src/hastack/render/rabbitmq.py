"""RabbitMQ's configuration for a persistence host: static peer discovery, pause-minority partitions, and
definitions that seed the user and an `openstack` vhost whose default queue type is quorum. Pure.

RabbitMQ 3.10 (Debian 12) has no server-wide `default_queue_type` setting in rabbitmq.conf (that came in
3.13); a vhost's metadata can carry it, so the OpenStack services use the `openstack` vhost, and their
oslo.messaging configuration also sets `rabbit_quorum_queue = true`.
"""

from __future__ import annotations

import base64
import hashlib
import json

from hastack.model import Deployment
from hastack.model.endpoints import host_dirs, rabbitmq_node
from hastack.render.common import header

VHOST = "openstack"


def render_rabbitmq_conf(dep: Deployment, host: str) -> str:
    addr = dep.host(host).address
    secrets = dep.inventory.secrets
    amqp, dist = dep.ports("rabbitmq")[:2]
    lines = [
        header(dep, host),
        f"listeners.tcp.1 = {addr}:{amqp}",
        f"distribution.listener.interface = {addr}",
        f"distribution.listener.port_range.min = {dist}",
        f"distribution.listener.port_range.max = {dist}",
        "cluster_formation.peer_discovery_backend = classic_config",
    ]
    lines += [
        f"cluster_formation.classic_config.nodes.{i} = {rabbitmq_node(h)}"
        for i, h in enumerate(dep.hosts_of("rabbitmq"), start=1)
    ]
    lines += [
        "# The minority side of a partition pauses instead of diverging.",
        "cluster_partition_handling = pause_minority",
        f"default_user = {secrets.rabbitmq_user}",
        f"default_pass = {secrets.rabbitmq_password}",
        "loopback_users = none",
        f"load_definitions = {host_dirs(dep, host).config}/rabbitmq-definitions.json",
        "log.console = true",
        "log.console.level = info",
    ]
    return "\n".join(lines) + "\n"


def password_hash(password: str, salt: bytes) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    digest = hashlib.sha256(salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


def render_rabbitmq_definitions(dep: Deployment) -> str:
    secrets = dep.inventory.secrets
    # A salt derived from the deployment keeps rendering pure and repeatable.
    salt = hashlib.sha256(f"hastack:{dep.name}".encode()).digest()[:4]
    definitions = {
        "users": [
            {
                "name": secrets.rabbitmq_user,
                "password_hash": password_hash(secrets.rabbitmq_password, salt),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"],
            }
        ],
        "vhosts": [
            {"name": "/"},
            {
                "name": VHOST,
                "description": "OpenStack services; quorum queues by default",
                "default_queue_type": "quorum",
                "metadata": {"description": "OpenStack services", "tags": [], "default_queue_type": "quorum"},
            },
        ],
        "permissions": [
            {"user": secrets.rabbitmq_user, "vhost": v, "configure": ".*", "write": ".*", "read": ".*"}
            for v in ("/", VHOST)
        ],
    }
    return json.dumps(definitions, indent=2) + "\n"


def render_erlang_cookie(dep: Deployment) -> str:
    return dep.inventory.secrets.erlang_cookie
