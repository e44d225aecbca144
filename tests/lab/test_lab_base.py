"""The lab's hosts, management network and etcd, and its promise to leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hastack.lab import procs, realise, system
from hastack.lab.plan import etcdctl, plan
from hastack.lab.state import LabState, locked
from hastack.model import parse_inventory
from hastack.model.checks import resolve
from tests.lab.conftest import PAPER, Lab, Snapshot, needs_root


def _in(lab: Lab, host: str, *argv: str) -> str:
    return system.run(system.in_netns(lab.plan.host(host).netns, argv)).stdout


def test_every_host_reaches_every_other_on_the_management_network(lab: Lab) -> None:
    for h in lab.plan.hosts:
        out = _in(lab, "ctl1", "ping", "-c", "1", "-W", "1", h.address)
        assert " 0% packet loss" in out, f"ctl1 cannot reach {h.name}"


def test_root_namespace_holds_no_lab_address(lab: Lab) -> None:
    shown = json.loads(system.run(["ip", "-json", "addr", "show"]).stdout)
    addrs = {a["local"] for link in shown for a in link.get("addr_info", [])}
    assert not addrs & {h.address for h in lab.plan.hosts}
    assert Snapshot.take().root_links == lab.before.root_links  # no lab link in the root namespace


def test_etcd_has_three_healthy_members(lab: Lab) -> None:
    out = _in(lab, "ctl1", *etcdctl(lab.plan, "endpoint", "health", "-w", "json"))
    health = json.loads(out)
    assert len(health) == 3
    assert all(e["health"] for e in health)


PROBE_CHANNELS = """
import json, pathlib, sys, urllib.request
from hastack.backends.haproxy import HAProxyRuntime
from hastack.pki import Layout
from hastack.pki.contexts import client_context
from hastack.store import EtcdStore
from hastack.store.etcd import ClientTls
ours, theirs = Layout(pathlib.Path(sys.argv[1])), Layout(pathlib.Path(sys.argv[5]))
etcd, api, (lb, port) = sys.argv[2], sys.argv[3], sys.argv[4].split(":")
said = {}
def attempt(name, fn):
    try:
        said[name] = f"answered: {fn()!r}"[:80]
    except Exception as e:
        said[name] = f"refused: {type(e).__name__}"
def store(files):
    return EtcdStore([etcd], 1.0, files and ClientTls(ours.ca, files.client_cert, files.client_key))
def runtime(identity):
    return HAProxyRuntime(lb, int(port), tls=identity and client_context(ours.ca, identity[1:] or None))
attempt("etcd plain", lambda: store(None).get("/x"))
attempt("etcd other CA", lambda: store(theirs).get("/x"))
attempt("etcd ours", lambda: store(ours).get("/x"))
attempt("api plain", lambda: urllib.request.urlopen(f"http://{api}/health", timeout=2).status)
https = lambda: urllib.request.urlopen(f"https://{api}/health", timeout=2, context=client_context(ours.ca))
attempt("api https", lambda: https().status)
attempt("runtime plain", lambda: runtime(None).command("show info") or "nothing")
attempt("runtime no cert", lambda: runtime(("tls",)).command("show info") or "nothing")
attempt("runtime ours", lambda: len(runtime(("tls", ours.client_cert, ours.client_key)).servers()))
print(json.dumps(said))
"""


def test_every_control_channel_answers_only_clients_with_a_certificate_or_over_tls(
    lab: Lab, tmp_path: Path
) -> None:
    """From a lab host, as anyone on the management network would try: etcd, the controller API and
    HAProxy's runtime API."""
    from hastack import pki
    from hastack.model.endpoints import RUNTIME_PORT
    from hastack.pki import Layout

    dep = lab.plan.deployment
    stranger = tmp_path / "stranger"
    pki.ensure("stranger", [], Layout(stranger))
    db1, ctl1 = dep.host("db1").address, dep.host("ctl1").address
    said = json.loads(
        _in(
            lab,
            "ctl1",
            sys.executable,
            "-c",
            PROBE_CHANNELS,
            dep.inventory.paths.pki_dir,
            f"{db1}:{dep.ports('etcd')[0]}",
            f"{ctl1}:{dep.port('hastack-controller')}",
            f"{db1}:{RUNTIME_PORT}",
            str(stranger),
        )
    )
    assert said["etcd plain"].startswith("refused")
    assert said["etcd other CA"].startswith("refused")
    assert said["etcd ours"] == "answered: None"
    assert said["api plain"].startswith("refused")
    assert said["api https"] == "answered: 200"
    assert said["runtime plain"] == "answered: 'nothing'"  # TLS expected: the bytes go nowhere
    assert said["runtime no cert"].startswith("refused")
    assert said["runtime ours"].startswith("answered: ")


def test_every_daemon_is_recorded_with_its_own_pid(lab: Lab) -> None:
    state = LabState.load()
    daemons = ("etcd", "mariadb", "rabbitmq", "epmd", "haproxy", "keepalived", "keepalived-vrrp")
    expected = {(d, h) for d in daemons for h in ("db1", "db2", "db3")}
    assert {(r.name, r.host) for r in state.processes} >= expected
    comm = {
        "etcd": "etcd",
        "mariadb": "mariadbd",
        "rabbitmq": "beam.smp",
        "epmd": "epmd",
        "haproxy": "haproxy",
        "keepalived": "keepalived",
        "keepalived-vrrp": "keepalived",
    }
    for rec in state.processes:
        assert procs.is_alive(rec)
        if rec.name in comm:
            assert Path(f"/proc/{rec.pid}/comm").read_text().strip() == comm[rec.name]
    assert any(r.name == "supervisor" for r in state.processes)


def test_no_lab_process_shows_a_secret_on_its_command_line(lab: Lab) -> None:
    # /proc/PID/cmdline is readable by every user of the machine.
    secrets = lab.plan.deployment.inventory.secrets
    values = {secrets.rabbitmq_password, secrets.db_password, secrets.keystone_admin_password}
    values |= {secrets.neutron_password, secrets.controller_token, secrets.erlang_cookie}
    shown = []
    for rec in LabState.load().processes:
        try:
            argv = Path(f"/proc/{rec.pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # exited since the state was read
        for arg in argv:
            if any(arg == v or arg.endswith(f"={v}") or f":{v}@" in arg for v in values):
                shown.append(f"{rec.name}@{rec.host}: {arg}")
    assert shown == []


def test_up_again_changes_nothing(lab: Lab) -> None:
    pids = [r.pid for r in LabState.load().processes]
    with locked():
        realise.up(lab.plan, LabState.load(), LabState.load().inventory, lambda _s: None)
    assert [r.pid for r in LabState.load().processes] == pids


def test_a_lab_range_that_overlaps_a_root_route_is_refused(tmp_path: Path) -> None:
    needs_root()
    route = system.root_routes()[0]
    inv = parse_inventory(
        textwrap.dedent(f"""
        deployment: clash
        networks: {{management: {route}}}
        hosts: [{{name: a, address: {next(route.hosts())}, roles: [persistence]}}]
        components: {{etcd: }}
        lab: {{external_cidr: 10.251.0.0/24, tenant_cidr: 10.252.0.0/16}}
    """)
    )
    state = LabState(deployment="")
    namespaces = system.netns_list()
    with pytest.raises(system.LabError, match=f"overlaps the root namespace's route {route}"):
        # A state object that is never saved: the refusal must come before any change.
        realise.up(plan(resolve(inv)), state, "clash.yaml", lambda _s: None)
    assert system.netns_list() == namespaces
    assert state.namespaces == []


def _down_after_a_crashed_up(lab: Lab) -> None:
    """`lab up` killed while Galera bootstraps: `lab down` still removes every trace of it."""
    hastack = Path(sys.executable).parent / "hastack"
    up = subprocess.Popen(
        [str(hastack), "lab", "up", str(PAPER)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    system.poll(
        "the crashed up to start galera",
        lambda: any(r.name == "mariadb" for r in LabState.load().processes),
        timeout=60,
    )
    os.killpg(up.pid, signal.SIGKILL)
    up.wait(timeout=10)
    assert not LabState.load().is_empty
    with locked():
        realise.down(LabState.load(), lambda _s: None)
    after = Snapshot.take()
    assert after.namespaces == lab.before.namespaces
    assert after.mounts == lab.before.mounts
    assert not Path("/var/lib/hastack-lab").exists()
    assert LabState.load().is_empty


def test_galera_has_three_synced_nodes(lab: Lab) -> None:
    from hastack.lab import galera

    for host in ("db1", "db2", "db3"):
        status = galera.status(lab.plan, host)
        assert status["wsrep_cluster_size"] == "3", host
        assert status["wsrep_local_state_comment"] == "Synced", host
        assert status["wsrep_cluster_status"] == "Primary", host


def test_rabbitmq_has_three_running_nodes_and_a_quorum_vhost(lab: Lab) -> None:
    from hastack.lab import rabbitmq

    assert sorted(rabbitmq.running_nodes(lab.plan, "db3")) == ["rabbit@db1", "rabbit@db2", "rabbit@db3"]
    vhosts = rabbitmq.ctl(lab.plan, "db1", "list_vhosts", "name", "default_queue_type", "--quiet")
    assert "openstack\tquorum" in vhosts.splitlines()


def test_one_load_balancer_holds_the_vip_and_writes_go_to_one_galera_node(lab: Lab) -> None:
    from hastack.lab import loadbalancer

    holders = loadbalancer.vip_holders(lab.plan)
    assert [len(h) for h in holders.values()] == [1]
    for client in ("ctl1", "net2"):
        out = _in(
            lab,
            client,
            "mariadb",
            "-h",
            "10.240.0.100",
            "-u",
            "hastack",
            "-phastack-lab",
            "-N",
            "-e",
            "SELECT @@wsrep_node_name",
        )
        assert out.strip() == "db1"


def test_zz_down_leaves_nothing_behind(lab: Lab) -> None:
    """Runs last in this module: tears the shared lab down, compares, and brings it back for later tests
    (in `finally`: a failure here must not take the lab away from the tests after it)."""
    try:
        _check_down_leaves_nothing(lab)
        _down_after_a_crashed_up(lab)
    finally:
        with locked():
            realise.up(lab.plan, LabState.load(), str(PAPER), lambda _s: None)


def _check_down_leaves_nothing(lab: Lab) -> None:
    recorded = list(LabState.load().processes)
    assert len(recorded) > 20
    with locked():
        realise.down(LabState.load(), lambda _s: None)
    assert [f"{r.name} on {r.host}" for r in recorded if procs.is_alive(r)] == []
    after = Snapshot.take()
    assert after.namespaces == lab.before.namespaces
    assert after.root_links == lab.before.root_links
    assert after.mounts == lab.before.mounts
    assert not Path("/var/lib/hastack-lab").exists()
    assert not list(Path("/etc/netns").glob("hs-*")) if Path("/etc/netns").exists() else True
    assert not [
        line for line in system.run(["ps", "-eo", "args"]).stdout.splitlines() if "hastack-lab" in line
    ]
    assert LabState.load().is_empty
    with locked():
        realise.down(LabState.load(), lambda _s: None)  # a second down is a no-op
