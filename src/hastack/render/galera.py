"""The MariaDB Galera server configuration of a persistence host. Pure."""

from __future__ import annotations

from hastack.model import Deployment
from hastack.model.endpoints import host_dirs
from hastack.render.common import header, iso8601

GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"


def render_galera(dep: Deployment, host: str) -> str:
    t = dep.inventory.timing
    dirs = host_dirs(dep, host)
    addr = dep.host(host).address
    peers = ",".join(str(dep.host(h).address) for h in dep.hosts_of("database"))
    provider_options = "; ".join(
        [
            f"gmcast.listen_addr=tcp://{addr}:4567",
            f"ist.recv_addr={addr}:4568",
            # Failure detection, from the inventory's timing knobs.
            f"evs.keepalive_period={iso8601(t.galera_keepalive_period_ms)}",
            f"evs.inactive_check_period={iso8601(t.galera_inactive_check_period_ms)}",
            f"evs.suspect_timeout={iso8601(t.galera_suspect_timeout_ms)}",
            f"evs.inactive_timeout={iso8601(t.galera_inactive_timeout_ms)}",
            f"evs.install_timeout={iso8601(t.galera_install_timeout_ms)}",
            # After a whole-cluster outage, nodes that saw the same primary component re-form it alone.
            "pc.recovery=TRUE",
            "gcache.size=256M",
        ]
    )
    lines = [
        header(dep, host),
        "[mysqld]",
        "# As the mysql user, as packaged: an SST helper started by root would drop to nobody and fail.",
        "user = mysql",
        f"datadir = {dirs.state}/mysql",
        f"socket = {dirs.run}/mysqld.sock",
        f"pid-file = {dirs.run}/mysqld.pid",
        f"log-error = {dirs.state}/mysqld.log",
        f"bind-address = {addr}",
        f"port = {dep.port('database')}",
        "skip-name-resolve",
        "binlog_format = ROW",
        "default_storage_engine = InnoDB",
        "innodb_autoinc_lock_mode = 2",
        "innodb_buffer_pool_size = 64M",
        "# Durable against a process crash; Galera replication covers the host crash.",
        "innodb_flush_log_at_trx_commit = 2",
        "max_connections = 500",
        "",
        "wsrep_on = ON",
        f"wsrep_provider = {GALERA_PROVIDER}",
        f"wsrep_cluster_name = hastack-{dep.name}",
        f"wsrep_cluster_address = gcomm://{peers}",
        f"wsrep_node_name = {host}",
        f"wsrep_node_address = {addr}",
        "wsrep_sst_method = rsync",
        f"wsrep_sst_receive_address = {addr}:4444",
        f'wsrep_provider_options = "{provider_options}"',
        "",
        "[client]",
        f"socket = {dirs.run}/mysqld.sock",
    ]
    return "\n".join(lines) + "\n"
