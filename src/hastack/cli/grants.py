"""The grants' threads in hastack's two daemons (DESIGN-fencing.md, grants from a majority of controllers):
the node agent's rounds, and a controller's answers, promises and their keeper. Composition only."""

from __future__ import annotations

import logging
import socket
import threading
import time

from hastack.agent.node import NodeAgent
from hastack.cli.errors import EXIT_BAD_INPUT, CliError
from hastack.controller.liveness import GrantLiveness
from hastack.controller.service import Controller
from hastack.grants.beats import Beats
from hastack.grants.granter import Granter
from hastack.grants.promises import PromiseKeys, keep
from hastack.grants.rounds import GrantRounds
from hastack.grants.udp import GrantClient, GrantServer
from hastack.model import Deployment
from hastack.model.endpoints import GrantTiming, grant_address
from hastack.store import Store

log = logging.getLogger("hastack.grants")
PROMISE_HOLD_S = 0.5  # a promise is ended this long after it was given: time for the leader's move


def send_rounds(
    dep: Deployment,
    host: str,
    rounds: GrantRounds,
    node: NodeAgent,
    timing: GrantTiming,
    stop: threading.Event,
) -> None:
    """The node agent's grant thread: a round to every controller every interval, and the grants counted."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((str(dep.host(host).address), 0))
    except OSError as e:
        raise CliError(
            f"grants: cannot send from {dep.host(host).address}: {e.strerror}", EXIT_BAD_INPUT
        ) from e
    controllers = {c: grant_address(dep, c) for c in dep.hosts_of("hastack-controller")}
    token = dep.inventory.secrets.controller_token
    client = GrantClient(
        sock, token, host, controllers, rounds, lambda: node.bound_revision, lambda: node.applied_revision
    )
    threading.Thread(target=client.run, args=(timing.interval_s, stop), name="grants", daemon=True).start()


def serve_grants(
    dep: Deployment, host: str, store: Store, timing: GrantTiming, stop: threading.Event
) -> GrantLiveness:
    """The controller's grant threads: answer the nodes' rounds and the leader's promise requests, and
    keep the promises (start granting after the clean-up, end each when due)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(grant_address(dep, host))
    except OSError as e:
        address, port = grant_address(dep, host)
        raise CliError(f"grants: cannot listen on {address}:{port}/udp: {e.strerror}", EXIT_BAD_INPUT) from e
    sock.settimeout(0.1)
    granter = Granter(timing.grant_s, timing.margin_s, time.monotonic)
    promises = PromiseKeys(store, dep.name, host, granter, hold_s=max(PROMISE_HOLD_S, timing.silent_s))
    peers = {c: grant_address(dep, c) for c in dep.hosts_of("hastack-controller")}
    token = dep.inventory.secrets.controller_token
    beats = Beats(host, list(peers), timing.silent_s, time.monotonic)
    server = GrantServer(sock, token, host, granter, promises.write, peers, beats.on_beat)
    threading.Thread(target=server.run, args=(stop,), name="grants", daemon=True).start()
    keeper = threading.Thread(target=keep, args=(promises, timing.interval_s, stop), name="promises")
    keeper.daemon = True
    keeper.start()
    return GrantLiveness(server, beats, dep.name, timing.silent_s)


def send_beats(liveness: GrantLiveness, ctl: Controller, interval_s: float, stop: threading.Event) -> None:
    """The controller's beat thread: every interval, the term it sees and whether it reaches the store."""

    def run() -> None:
        while not stop.wait(interval_s):
            try:
                liveness.beat(ctl.election.current, healthy=ctl.store_ok_since is not None)
            except Exception:  # dying silently, it would let a majority take the lead from this one
                log.exception("beats: going on")

    threading.Thread(target=run, name="beats", daemon=True).start()
