"""`hastack agent` and `hastack controller`: where hastack's two daemons are put together from the inventory.

This is the composition root: the store, the network backend, the router host, the gates and the clock are
made here and handed to the daemons' constructors.
"""

from __future__ import annotations

import logging
import signal
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click

from hastack import faultpoints
from hastack.agent import daemon as agent_daemon
from hastack.agent.gate import Gates
from hastack.agent.node import RENEWAL_CALLS, NodeAgent
from hastack.agent.watch import ProcessWatch
from hastack.backends.haproxy import HAProxyRuntime
from hastack.cli.errors import EXIT_BAD_INPUT, CliError
from hastack.cli.grants import send_beats, send_rounds, serve_grants
from hastack.cli.wiring import wiring
from hastack.controller import daemon as controller_daemon
from hastack.controller.api import Api, serve
from hastack.controller.election import Election
from hastack.controller.endpoints import controller_url
from hastack.controller.guard import GuardedStore
from hastack.controller.metrics import Metrics
from hastack.controller.service import Controller, Settings
from hastack.failsafe.peers import ControllerPeers, Peer
from hastack.grants.rounds import GrantRounds
from hastack.lab.plan import LAB_INVENTORY
from hastack.model import Deployment, load_deployment
from hastack.model.endpoints import (
    RUNTIME_PORT,
    SECRETS_CREDENTIAL,
    grant_timing,
    with_credentials,
)
from hastack.model.inventory import lab_default_secrets
from hastack.pki.contexts import client_context, server_context
from hastack.pki.layout import Layout
from hastack.render.systemd import watchdog_ms
from hastack.store import keys
from hastack.store.connect import open_store

OPTIONS = [
    click.option("--inventory", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path)),
    click.option("--host", required=True, help="This host's name in the inventory."),
]


def _common(fn: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(OPTIONS):
        fn = option(fn)
    return fn


def _setup(inventory: Path, host: str, role: str, credentials: Path | None = None) -> Deployment:
    if credentials is None:
        dep = load_deployment(inventory)
    else:
        dep = with_credentials(load_deployment(inventory, credentials / SECRETS_CREDENTIAL), str(credentials))
    if host not in dep.hosts_of(role):
        raise CliError(f"--host {host}: runs no {role} in {inventory}", EXIT_BAD_INPUT)
    defaults = lab_default_secrets(dep.inventory.secrets)
    # Only the lab's own inventory (written by `lab up`, its paths under the lab's directory) may use them.
    if defaults and dep.inventory.paths.inventory != LAB_INVENTORY:
        raise CliError(
            f"{inventory}: {', '.join(defaults)} still the lab's defaults, which anyone can read: "
            "set your own",
            EXIT_BAD_INPUT,
        )
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {host} %(name)s %(message)s")
    return dep


def agent_store_timeout_s(dep: Deployment) -> float:
    """How long the node agent waits for one etcd member to answer one call. Two bounds, the lower wins:
    - a renewal that fails must fail in time for a failsafe round (one heartbeat) before the gates run
      out: the first call tried on every member, a heartbeat after the last good keepalive, then the
      round, within the deadline `TTL - m` (an etcd leader frozen or re-elected holds every call);
    - a renewal against members that all stay silent (two calls, each on every member) and a round end
      half a second before the watchdog: a node cut off from etcd is not a hung agent."""
    t = dep.inventory.timing
    beat_s, members = t.heartbeat_interval_ms / 1000, len(dep.hosts_of("etcd"))
    deadline_s = t.lease_ttl_s - t.fence_margin_ms / 1000 - 2 * beat_s
    watchdog_s = watchdog_ms(dep, "hastack-agent") / 1000 - beat_s - 0.5
    return max(0.05, min(deadline_s / members, watchdog_s / (RENEWAL_CALLS * members)))


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@click.command()
@_common
@click.option(
    "--l3-pidfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pidfile of the local L3 agent (default: RUN_DIR/l3-agent.pid of the inventory's paths).",
)
def agent(inventory: Path, host: str, l3_pidfile: Path | None) -> None:
    """Run the node agent of network node HOST in the foreground (systemd: Type=notify, WatchdogSec).

    It holds the node's lease while the local L3 agent lives, opens the kernel gates of the routers the
    store binds here after each renewal, and on the L3 agent's death shuts them, revokes the lease and
    removes the routers. Example: hastack agent --inventory /etc/hastack/inventory.yaml --host net1
    """
    dep = _setup(inventory, host, "hastack-agent")
    t = dep.inventory.timing
    store = open_store(dep, timeout_s=agent_store_timeout_s(dep))
    routers = wiring(dep).router_host(dep, host)
    peers = ControllerPeers(
        [Peer(c, controller_url(dep, c)) for c in dep.hosts_of("hastack-controller")],
        dep.inventory.secrets.controller_token,
        timeout_s=t.heartbeat_interval_ms / 1000,
        ca=Layout.of(dep).ca,
    )
    timing = grant_timing(dep)
    rounds = None
    if timing is not None:
        controllers = dep.hosts_of("hastack-controller")
        rounds = GrantRounds(controllers, timing.grant_s, timing.margin_s, time.monotonic, wall=time.time)
    node = NodeAgent(
        store,
        routers,
        Gates(),
        dep.name,
        host,
        t.lease_ttl_s,
        t.fence_margin_ms,
        time.monotonic,
        time.time,
        peers,
        _fault_points(),
        rounds,
    )
    pidfile = l3_pidfile or Path(dep.inventory.paths.run_dir.format(host=host)) / "l3-agent.pid"
    stop, bindings_changed = _stop_on_signals(), threading.Event()
    if timing is not None and rounds is not None:
        send_rounds(dep, host, rounds, node, timing, stop)
    watcher = open_store(dep, timeout_s=5.0)
    threading.Thread(
        target=agent_daemon.watch_bindings,
        args=(watcher, keys.bindings_prefix(dep.name), bindings_changed, stop),
        name="bindings-watch",
        daemon=True,
    ).start()
    agent_daemon.run(
        node, routers, ProcessWatch(pidfile), t.heartbeat_interval_ms / 1000, stop, bindings_changed
    )


@click.command()
@_common
@click.option("--listen", help="Address:port of the HTTP API (default: the host's address, port 7480).")
@click.option(
    "--credentials",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Read the secrets file, certificates, keys and Neutron's clouds.yaml and CA bundle from this "
    "directory, as systemd's LoadCredential= leaves them (%d): secrets.yaml, ca.pem, client.pem, "
    "client-key.pem, HOST.pem, HOST-key.pem, clouds.yaml, ca-bundle.pem. The rendered unit does this, "
    "so that the controller runs as a user of its own.",
)
def controller(inventory: Path, host: str, listen: str | None, credentials: Path | None) -> None:
    """Run the HA controller on HOST in the foreground; one per controller host, leader-elected on etcd.

    Only the leader moves routers and drives HAProxy; `GET /leader` answers 200 there.
    Example: hastack controller --inventory /etc/hastack/inventory.yaml --host ctl1
    """
    dep = _setup(inventory, host, "hastack-controller", credentials)
    address, port = _listen(dep, host, listen)  # bad input is refused before anything starts
    t = dep.inventory.timing
    # A slow etcd member must not eat the leader's one-second lease: give up on it early, try the next.
    # Every call goes through the guard, which answers the node agents' failsafe rounds and keeps the
    # promises it makes (controller/guard.py); a call outstanding for a round's timeout counts as failed.
    store = GuardedStore(
        open_store(dep, timeout_s=0.4),
        lambda key: keys.changes_gates(dep.name, key),
        promise_s=t.lease_ttl_s,
        stuck_s=t.heartbeat_interval_ms / 1000,
        clock=time.monotonic,
    )
    election = Election(store, keys.leader_key(dep.name), host, t.lease_ttl_s, time.monotonic)
    metrics = Metrics()
    settings = Settings(
        dep.name, dep.hosts_of("l3-agent"), t.lease_ttl_s, t.controller_tick_ms / 1000, dep.api_replicas()
    )
    tls = _runtime_tls(dep)
    balancers = [
        HAProxyRuntime(str(dep.host(h).address), RUNTIME_PORT, tls=tls) for h in dep.hosts_of("haproxy")
    ]
    backend = wiring(dep).backend(dep, store)
    stop = _stop_on_signals()
    timing = grant_timing(dep)
    liveness = serve_grants(dep, host, store, timing, stop) if timing is not None else None
    # Wall-clock time: the L3 agents' heartbeats in the store are wall-clock times.
    ctl = Controller(
        store, backend, election, balancers, settings, time.time, metrics, time.monotonic, store, liveness
    )
    if liveness is not None and timing is not None:
        send_beats(liveness, ctl, timing.interval_s, stop)
    token, open_reads = dep.inventory.secrets.controller_token, dep.inventory.controller_api.open_reads
    api = Api(ctl, metrics, token, settings.tick_s, store, open_reads)
    try:
        server = serve(api, address, port, _api_tls(dep, host))
    except OSError as e:
        raise CliError(f"--listen {address}:{port}: {e}", EXIT_BAD_INPUT) from e
    try:
        controller_daemon.run(ctl, api, store, stop)
    finally:
        server.shutdown()


def _api_tls(dep: Deployment, host: str) -> ssl.SSLContext | None:
    if not dep.inventory.tls.api:
        return None
    files = Layout.of(dep)
    try:
        return server_context(files, host)
    except (OSError, ssl.SSLError) as e:
        raise CliError(
            f"{files.host_cert(host)}: cannot serve HTTPS with it ({getattr(e, 'strerror', None) or e}); "
            "`hastack pki INVENTORY` makes the certificates"
        ) from e


def _runtime_tls(dep: Deployment) -> ssl.SSLContext | None:
    """How the controller reaches HAProxy's runtime API: TLS with hastack's client certificate."""
    if not dep.inventory.tls.runtime_api:
        return None
    files = Layout.of(dep)
    try:
        return client_context(files.ca, (files.client_cert, files.client_key))
    except (OSError, ssl.SSLError) as e:
        raise CliError(
            f"{files.client_cert}: cannot use it for HAProxy's runtime API "
            f"({getattr(e, 'strerror', None) or e}); `hastack pki INVENTORY` makes the certificates"
        ) from e


def _fault_points() -> faultpoints.FaultPoint:
    try:
        return faultpoints.from_environment()
    except ValueError as e:
        raise CliError(str(e), EXIT_BAD_INPUT) from e


def _listen(dep: Deployment, host: str, listen: str | None) -> tuple[str, int]:
    if listen is None:
        return str(dep.host(host).address), dep.port("hastack-controller")
    address, _, port = listen.rpartition(":")
    if not address or not port.isdigit() or not 0 < int(port) < 65536:
        raise CliError(f"--listen {listen}: expected ADDRESS:PORT, the port from 1 to 65535", EXIT_BAD_INPUT)
    return address, int(port)
