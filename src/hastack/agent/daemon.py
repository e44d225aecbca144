"""The node agent's process: the L3 agent watcher thread, the renew/gate loop, and the supervisor pings.

The watcher owns the pidfd: it blocks on it, and the moment the L3 agent exits it runs the death path
(gates shut, lease revoked, cleanup) under the agent's lock. The main loop renews every heartbeat, gates
again whenever the routers here change (polled every 20 ms: a file's mtime in the lab) or the bindings do
(a store watch, where the bindings live in the store: a standby bound here opens at once, not at the next
renewal), tells the supervisor READY=1 once, and WATCHDOG=1 after every renewal that did not hang. With
grants on, a thread of its own refreshes the open gates on the grants, whatever the renewal waits for.
"""

from __future__ import annotations

import logging
import threading
import time

from hastack.agent.node import NodeAgent, RouterHost
from hastack.agent.watch import ProcessWatch, is_news, sd_notify
from hastack.store import Store, StoreError

log = logging.getLogger("hastack.agent")
POLL_S = 0.02


class Watcher(threading.Thread):
    def __init__(self, agent: NodeAgent, watch: ProcessWatch, stop: threading.Event):
        super().__init__(name="l3-watch", daemon=True)
        self.agent, self.watch, self.stop = agent, watch, stop
        self.l3_alive = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.watch.attach():
                self.l3_alive.clear()
                self.stop.wait(0.1)
                continue
            if not self.l3_alive.is_set():
                log.info("watching the L3 agent, pid %s", self.watch.pid)
            self.l3_alive.set()
            while not self.stop.is_set() and not self.watch.wait_exit(0.25):
                pass
            if self.stop.is_set():
                return
            self.l3_alive.clear()
            log.warning(self.agent.on_l3_death_under_policy())  # under the agent's lock
            self.watch.detach()


def watch_bindings(store: Store, prefix: str, wake: threading.Event, stop: threading.Event) -> None:
    """Set `wake` whenever a key under `prefix` changes (a thread of its own, a store client of its own)."""
    revision = 0
    while not stop.is_set():
        try:
            if revision == 0 or store.wait(prefix, revision, 1.0):
                _kvs, revision = store.get_prefix(prefix)
                wake.set()
        except StoreError:
            revision = 0
            stop.wait(0.5)


def refresh_on_grants(agent: NodeAgent, stop: threading.Event) -> None:
    """The grants' thread of gates: refresh the open gates whenever the grants allow them longer and half
    of what the last refresh allowed has passed (NodeAgent.grants_renewed). Apart from the renewals,
    which may wait on etcd for most of a second."""
    said = ""
    while not stop.wait(POLL_S / 2):
        if agent.grants_renewed():
            granted = agent.gate()
            if is_news(said, granted):
                log.info("granted: %s", granted)
                said = granted


def run(
    agent: NodeAgent,
    routers: RouterHost,
    watch: ProcessWatch,
    heartbeat_s: float,
    stop: threading.Event,
    bindings_changed: threading.Event | None = None,
) -> None:
    wake = bindings_changed or threading.Event()
    # First of all, keep the lease a previous run of this agent left, before it runs out (a restart takes
    # about a second here, the lease lasts one): keeping it alive opens no gate, and if the L3 agent
    # turns out to be dead, the first renewal below revokes it.
    try:
        if agent.adopt():
            log.info("kept the lease %x a previous run of this agent held", agent.lease)
    except StoreError as e:
        log.warning("could not look for a previous lease: %s", e)
    watcher = Watcher(agent, watch, stop)
    watcher.start()
    watcher.l3_alive.wait(1.0)  # give the watcher a moment to find a running L3 agent
    if agent.grants is not None:
        threading.Thread(target=refresh_on_grants, args=(agent, stop), name="gates", daemon=True).start()
    said, version, next_renew, ready = "", routers.version(), 0.0, False
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_renew or agent.renew_soon:
            sentence = agent.renew(watcher.l3_alive.is_set())
            next_renew = now + heartbeat_s
            sd_notify("WATCHDOG=1")
            if not ready:
                ready = sd_notify("READY=1") or True
        elif routers.version() != version or wake.is_set():
            wake.clear()
            version = routers.version()
            sentence = agent.routers_changed()
        else:
            sentence = ""
        if sentence and is_news(said, sentence):
            log.info(sentence)
            said = sentence
        stop.wait(POLL_S)
