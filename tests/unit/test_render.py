"""Rendering is pure: the inventory's knobs land in the daemons' configuration text."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import yaml

from hastack.model import Deployment, load_deployment
from hastack.model.checks import resolve
from hastack.model.inventory import Tls
from hastack.render import render_all
from hastack.render.rabbitmq import password_hash

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _file(dep: Deployment, host: str, path: str) -> str:
    return next(f.text for f in render_all(dep) if f.host == host and f.path == path)


def test_files_per_role(paper: Deployment) -> None:
    by_host: dict[str, set[str]] = {}
    for f in render_all(paper):
        by_host.setdefault(f.host, set()).add(f.path)
    assert {"haproxy.cfg", "keepalived.conf", "mariadb.cnf", "rabbitmq.conf", "etcd.conf.yml"} <= by_host[
        "db1"
    ]
    neutron = {"neutron/neutron.conf"}
    assert by_host["ctl1"] == {
        "systemd/hastack-controller.service",
        "keystone/keystone.conf",
        *neutron,
        "neutron/ml2_conf.ini",
    }
    agents = {*neutron, "neutron/openvswitch_agent.ini"}
    assert by_host["net1"] == {
        "systemd/hastack-agent.service",
        *agents,
        "neutron/l3_agent.ini",
        "neutron/dhcp_agent.ini",
    }
    assert by_host["cmp1"] == agents


def test_rendering_is_deterministic(paper: Deployment) -> None:
    assert render_all(paper) == render_all(paper)


def test_haproxy_health_checks_follow_the_timing_knobs(paper: Deployment) -> None:
    cfg = _file(paper, "db1", "haproxy.cfg")
    assert "option redispatch 1" in cfg
    assert "retry-on all-retryable-errors" in cfg
    assert "retries 3" in cfg
    assert "bind 10.240.0.100:5000 transparent" in cfg
    assert "option httpchk GET /v3" in cfg
    assert (
        "inter 200ms fastinter 200ms downinter 200ms fall 2 rise 2 observe layer7 error-limit 3 "
        "on-error mark-down" in cfg
    )
    assert "stats socket /run/hastack/db1/haproxy.sock mode 600 level admin" in cfg
    # The controllers reach the runtime API over TLS with a client certificate, never in the clear.
    assert "stats socket ipv4@" not in cfg
    runtime = cfg[cfg.index("\nlisten hastack-runtime-api") :].split("\n\n")[0]
    assert (
        "bind 10.240.0.11:8405 ssl crt /etc/hastack/pki/db1-bundle.pem ca-file /etc/hastack/pki/ca.pem "
        "verify required" in runtime
    )
    assert "server local unix@/run/hastack/db1/haproxy.sock" in runtime
    assert "timeout check 250ms" in cfg
    assert "timeout connect 250ms" in cfg  # a request to a cut host goes elsewhere after 250 ms, not 1 s
    keystone = cfg[cfg.index("\nbackend keystone") :].split("\n\n")[0]
    assert "timeout server 2000ms" in keystone  # a frozen replica's request is retried after 2 s
    assert (
        "http-request disable-l7-retry if METH_POST !{ path /v3/auth/tokens } || { method PATCH }" in keystone
    )
    # ...but a token, whose password check took 1.2-1.7 s on a loaded lab host, gets 15 s.
    assert "http-request set-timeout server 15000ms if METH_POST { path /v3/auth/tokens }" in keystone
    neutron = cfg[cfg.index("\nbackend neutron-server") :].split("\n\n")[0]
    assert "set-timeout" not in neutron


def test_haproxy_sends_galera_writes_to_one_node(paper: Deployment) -> None:
    cfg = _file(paper, "db1", "haproxy.cfg")
    section = cfg[cfg.index("listen database") :].split("\n\n")[0]
    assert "server db1 10.240.0.11:3306\n" in section
    assert "server db2 10.240.0.12:3306 backup" in section
    assert "server db3 10.240.0.13:3306 backup" in section
    assert "stick on dst" in section
    assert "mode tcp" in section


def test_keepalived_vrrp3_with_advert_vmac_and_haproxy_tracking(paper: Deployment) -> None:
    first, second = _file(paper, "db1", "keepalived.conf"), _file(paper, "db2", "keepalived.conf")
    assert "vrrp_version 3" in first
    assert "advert_int 0.1" in first
    assert "use_vmac vrrp.51" in first
    assert "virtual_router_id 51" in first
    assert "10.240.0.100/24" in first
    assert "priority 150" in first
    assert "priority 140" in second
    assert 'script "/usr/bin/curl -sf -o /dev/null --max-time 0.5 http://10.240.0.11:8404/healthz"' in first
    assert "track_script {\n        haproxy" in first
    assert "vrrp_garp_master_delay" in first


def test_galera_cluster_and_failure_detection(paper: Deployment) -> None:
    cnf = _file(paper, "db2", "mariadb.cnf")
    assert "wsrep_cluster_address = gcomm://10.240.0.11,10.240.0.12,10.240.0.13" in cnf
    assert "wsrep_node_address = 10.240.0.12" in cnf
    assert "evs.suspect_timeout=PT2S" in cnf
    assert "evs.keepalive_period=PT0.5S" in cnf
    assert "evs.inactive_check_period=PT0.5S" in cnf


def test_rabbitmq_static_peers_and_quorum_vhost(paper: Deployment) -> None:
    conf = _file(paper, "db3", "rabbitmq.conf")
    assert "cluster_formation.peer_discovery_backend = classic_config" in conf
    for i, host in enumerate(("db1", "db2", "db3"), start=1):
        assert f"cluster_formation.classic_config.nodes.{i} = rabbit@{host}" in conf
    assert "cluster_partition_handling = pause_minority" in conf
    definitions = json.loads(_file(paper, "db3", "rabbitmq-definitions.json"))
    vhost = next(v for v in definitions["vhosts"] if v["name"] == "openstack")
    assert vhost["metadata"]["default_queue_type"] == "quorum"
    assert "hastack-lab" not in json.dumps(definitions)  # only the hash of the password


def test_rabbitmq_password_hash_is_salted_sha256() -> None:
    salt = b"\x01\x02\x03\x04"
    raw = base64.b64decode(password_hash("secret", salt))
    assert raw[:4] == salt
    assert raw[4:] == hashlib.sha256(salt + b"secret").digest()


def test_etcd_timings(paper: Deployment) -> None:
    conf = yaml.safe_load(_file(paper, "db1", "etcd.conf.yml"))
    assert conf["heartbeat-interval"] == 50
    assert conf["election-timeout"] == 500
    assert conf["enable-grpc-gateway"] is True
    assert conf["pre-vote"] is True  # a member back from a partition must not force an election


def test_etcd_takes_only_clients_and_peers_with_a_certificate_of_the_deployments_ca(
    paper: Deployment,
) -> None:
    conf = yaml.safe_load(_file(paper, "db1", "etcd.conf.yml"))
    assert conf["initial-cluster"].count("=https://") == 3
    assert conf["listen-client-urls"] == "https://10.240.0.11:2379"
    for side in ("client-transport-security", "peer-transport-security"):
        assert conf[side] == {
            "cert-file": "/etc/hastack/pki/db1.pem",
            "key-file": "/etc/hastack/pki/db1-key.pem",
            "client-cert-auth": True,
            "trusted-ca-file": "/etc/hastack/pki/ca.pem",
        }
    plain = paper.inventory.model_copy(update={"tls": Tls(etcd=False)})
    conf = yaml.safe_load(_file(resolve(plain), "db1", "etcd.conf.yml"))
    assert conf["initial-cluster"].count("=http://") == 3
    assert "client-transport-security" not in conf


def test_systemd_units_notify_watchdog_restart(paper: Deployment) -> None:
    agent = _file(paper, "net1", "systemd/hastack-agent.service")
    assert "Type=notify" in agent
    assert "Restart=always" in agent
    assert "WatchdogSec=2000ms" in agent  # for hangs, not for slowness: at least 2 s
    assert "--host net1" in agent
    controller = _file(paper, "ctl1", "systemd/hastack-controller.service")
    assert "WatchdogSec=2000ms" in controller


def test_keystone_uses_the_vip_fernet_and_the_memory_cache(paper: Deployment, minimal: Deployment) -> None:
    conf = _file(paper, "ctl2", "keystone/keystone.conf")
    assert "connection = mysql+pymysql://keystone:hastack-lab@10.240.0.100:3306/keystone" in conf
    assert "provider = fernet" in conf
    assert "backend = dogpile.cache.memory" in conf
    assert "key_repository = /etc/hastack/ctl2/keystone/fernet-keys" in conf
    # One host with a single database: HAProxy still fronts it, so the VIP is used there too.
    assert "@10.240.0.100:3306/" in _file(minimal, "aio", "keystone/keystone.conf")


def test_haproxy_and_keepalived_restart_on_any_exit(paper: Deployment) -> None:
    for unit in ("haproxy", "keepalived"):
        dropin = _file(paper, "db1", f"systemd/{unit}.service.d/hastack.conf")
        assert "[Service]\nRestart=always\nRestartSec=100ms\n" in dropin


def test_neutron_on_galera_rabbitmq_and_keystone_with_provider_bridges(paper: Deployment) -> None:
    conf = _file(paper, "net2", "neutron/neutron.conf")
    assert "host = net2" in conf
    assert "connection = mysql+pymysql://neutron:hastack-lab@10.240.0.100:3306/neutron" in conf
    brokers = ",".join(f"hastack:hastack-lab@10.240.0.1{i}:5672" for i in (1, 2, 3))
    assert f"transport_url = rabbit://{brokers}/" in conf
    assert "auth_url = http://10.240.0.100:5000/v3" in conf
    assert "dhcp_agents_per_network = 2" in conf
    # hastack moves routers: Neutron's own rescheduling would race it.
    assert "allow_automatic_l3agent_failover = false" in conf
    assert "root_helper = env" in conf
    assert "bridge_mappings = tenant:br-tenant,external:br-ex" in _file(
        paper, "net2", "neutron/openvswitch_agent.ini"
    )
    assert "bridge_mappings = tenant:br-tenant\n" in _file(paper, "cmp1", "neutron/openvswitch_agent.ini")
    l3 = _file(paper, "net1", "neutron/l3_agent.ini")
    assert "interface_driver = openvswitch" in l3
    assert "ovs_use_veth = true" in l3
    # privsep's pool is not left at the core count: arpings would stall every router build behind them.
    for agent in (l3, _file(paper, "net1", "neutron/dhcp_agent.ini")):
        assert "[privsep]\nthread_pool_size = 32\n" in agent
        assert "[privsep_link]\nthread_pool_size = 32\n" in agent
    assert "network_vlan_ranges = tenant:100:999" in _file(paper, "ctl1", "neutron/ml2_conf.ini")


def test_every_file_holding_a_secret_is_readable_by_its_owner_only(paper: Deployment, tmp_path: Path) -> None:
    secrets = {
        "rabbitmq_password": "Secret-Rabbit-1",
        "erlang_cookie": "SecretCookie22",
        "db_password": "Secret-Db-3",
        "keystone_admin_password": "Secret-Admin-4",
        "neutron_password": "Secret-Neutron-5",
        "controller_token": "Secret-Token-6",
    }
    text = (
        (EXAMPLES / "paper.yaml").read_text()
        + "secrets:\n"
        + "".join(f"  {k}: {v}\n" for k, v in secrets.items())
    )
    (tmp_path / "inv.yaml").write_text(text)
    dep = load_deployment(tmp_path / "inv.yaml")
    holding = {
        (f.host, f.path, f.mode)
        for f in render_all(dep)
        if any(v in f.text for v in secrets.values()) or "password_hash" in f.text
    }
    assert {path for _host, path, _mode in holding} >= {"rabbitmq.conf", "keystone/keystone.conf"}
    assert all(mode & 0o077 == 0 for _host, _path, mode in holding), holding
    # ...and only those: a file without a secret stays readable by the daemons' users.
    assert all(f.mode == 0o644 for f in render_all(dep) if (f.host, f.path, f.mode) not in holding)
