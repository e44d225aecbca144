"""The lab L3 agent: the lab's stand-in for neutron-l3-agent, one process per network node.

It reports liveness to the lab network service every `report_interval`, and each tick it observes which
routers the service binds to its host, decides (pure diff) which to build and which to remove, and acts:
a router is a namespace `hs-<host>-<router>` with a qr- port on its tenant VLAN (the gateway, MAC fixed),
a qg- port on the external VLAN with the router's address and its floating IPs, forwarding, SNAT and DNAT
in nftables, and gratuitous ARP when it starts serving here. Like Neutron's, when this process dies its
routers keep forwarding: the kernel state stays. Every namespace it makes is recorded in its own file
(teardown reads it). Between ticks it waits on the store, so a new binding is acted on at once.

Standby routers (`lab.standby_routers`, on by default): where a hastack node agent guards the host, the
agent also builds every router bound elsewhere, behind its shut kernel gate and without announcing it, so
that a failover moves no router through a build: the node agent opens the gate of a router once it is
bound here, and this agent announces it (gratuitous ARP) at once. Like Neutron's L3 HA standbys, but
fenced by the lease instead of elected by VRRP: a standby never forwards, answers or announces.

    hastack lab l3-agent INVENTORY HOST      (python -m hastack.lab.l3agent INVENTORY HOST)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hastack.agent import garp, gate
from hastack.backends import BackendError, LabNetworkBackend
from hastack.lab import system
from hastack.lab.dataplane import ANNOUNCE_MAC, INNER_MTU, batch, bridge
from hastack.lab.plan import LAB_ROOT, PREFIX, LabPlan, plan
from hastack.lab.system import LabError, in_netns_shared_mounts, run
from hastack.lab.topology import EXTERNAL_VLAN, Router
from hastack.model import load_deployment
from hastack.store import StoreError, keys
from hastack.store.connect import open_store

REPORT_INTERVAL_S = 1.0
BUILDERS = 8
BUILD_NICE = 10
log = logging.getLogger("hastack.l3agent")


def router_netns(host: str, router: str) -> str:
    return f"{PREFIX}{host}-{router}"


def record_file(host: str) -> Path:
    return Path(LAB_ROOT) / host / "l3-routers.json"


def _records(host: str) -> dict[str, str]:
    """namespace -> "building" | "ready". A namespace is recorded before it exists, so none is ever leaked;
    only a "ready" router counts as present, so a build that failed half-way is done again."""
    try:
        return dict(json.loads(record_file(host).read_text()))
    except (OSError, ValueError):
        return {}


def recorded_namespaces(host: str) -> list[str]:
    return sorted(_records(host))


@dataclass(frozen=True)
class Plan:
    build: tuple[str, ...]
    remove: tuple[str, ...]
    announce: tuple[str, ...] = ()  # standbys bound here since the last tick: take them over
    demote: tuple[str, ...] = ()  # served here at the last tick, bound elsewhere now: stand by


def decide(
    wanted: set[str],
    present: set[str],
    mine: frozenset[str] = frozenset(),
    was_mine: frozenset[str] = frozenset(),
) -> Plan:
    """Which routers to build and remove so that this host has exactly `wanted` (its own and its
    standbys), which standbys became its own, and which of its own became standbys. Pure."""
    return Plan(
        tuple(sorted(wanted - present)),
        tuple(sorted(present - wanted)),
        tuple(sorted((mine & present) - was_mine)),
        tuple(sorted((was_mine & present & wanted) - mine)),
    )


# Bridge port flags of a standby's host-side ports, and of a serving router's (the kernel's defaults).
STANDBY_FLAGS = "flood off mcast_flood off bcast_flood off learning off"
SERVING_FLAGS = "flood on mcast_flood on bcast_flood on learning on"

# Set before the ports exist. IPv6 off: the routers are IPv4, and each port coming up sent IPv6 neighbour
# discovery and MLD to multicast, which a bridge copies to every router port: a node taking over 1000
# routers flooded itself with millions of copies (bench scale).
ROUTER_SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
)


class RouterRealiser:
    """Kernel state of the routers on one host."""

    def __init__(self, lab: LabPlan, host: str) -> None:
        self.host = host
        self.host_ns = lab.host(host).netns
        # Routers are born behind a shut kernel gate only where a hastack node agent will open it.
        self.gated = host in lab.deployment.hosts_of("hastack-agent")
        self.announcer = garp.Announcer()
        self._lock = threading.Lock()  # routers are built in parallel: one writer of the records at a time

    def present(self) -> set[str]:
        prefix = f"{PREFIX}{self.host}-"
        return {ns.removeprefix(prefix) for ns, status in _records(self.host).items() if status == "ready"}

    def _record(self, ns: str, status: str | None) -> None:
        with self._lock:
            self._write_record(ns, status)

    def _write_record(self, ns: str, status: str | None) -> None:
        records = _records(self.host)
        if status is None:
            records.pop(ns, None)
        else:
            records[ns] = status
        tmp = record_file(self.host).with_suffix(".tmp")
        tmp.write_text(json.dumps(records, sort_keys=True))
        tmp.replace(record_file(self.host))

    def build(self, r: Router, active: bool = True) -> None:
        """Build the router from a clean slate (a half-built one from a failed attempt goes first); announce
        it if it is to serve here (`active`), not if it stands by."""
        ns = router_netns(self.host, r.id)
        self.announcer.forget(ns)
        self._record(ns, "building")
        system.delete_netns(ns)
        system.ensure_netns(ns)
        tq, tg, qr, qg = f"tq{r.id}", f"tg{r.id}", f"qr-{r.id}", f"qg-{r.id}"
        # The gate goes in first, shut, before forwarding is switched on or any port exists: nothing of
        # the router can forward before the node agent opens it. One process: nft, then sysctl. nsenter
        # --net, not ip netns exec: no mount namespace to set up for every command.
        sysctl = " ".join(["sysctl", "-qw", *ROUTER_SYSCTLS])
        if self.gated:
            run(in_netns_shared_mounts(ns, ["sh", "-c", f"nft -f - && {sysctl}"]), stdin=gate.install_batch())
        else:
            run(in_netns_shared_mounts(ns, ["sysctl", "-qw", *ROUTER_SYSCTLS]))
        # The host-side ends go with the old namespace (a veth dies with its peer), but only once the kernel
        # has destroyed that namespace, which it does asynchronously (seconds, measured, when several go at
        # once). Delete any that remain, so the old incarnation is off the bridges and the names are free.
        # One process; -force goes on past "Cannot find device", the usual case.
        run(
            ["ip", "-force", "-n", self.host_ns, "-batch", "-"],
            stdin=f"link del {tq}\nlink del {tg}\n",
            check=False,
        )
        batch(
            "ip",
            self.host_ns,
            [
                f"link add {tq} mtu {INNER_MTU} type veth peer name {qr} netns {ns}",
                f"link add {tg} mtu {INNER_MTU} type veth peer name {qg} netns {ns}",
                f"link set {tq} master {bridge(r.vlan)}",
                f"link set {tg} master {bridge(EXTERNAL_VLAN)}",
            ],
        )
        # A standby's ports are up and in the bridge, but out of its floods and its learning: nothing
        # reaches it, and taking over flips flags (at once) instead of bringing ports up, which waits for
        # the kernel's link watch (up to a second, a block of ports at a time: the stragglers of a
        # 1000-router failover). Its gate, not this, is what keeps it from forwarding.
        if not active:
            batch("bridge", self.host_ns, [f"link set dev {p} {STANDBY_FLAGS}" for p in (tq, tg)])
        batch("ip", self.host_ns, [f"link set {tq} up", f"link set {tg} up"])
        batch(
            "ip",
            ns,
            [
                "link set lo up",
                f"link set {qr} mtu {INNER_MTU} address {r.qr_mac}",
                f"addr add {r.gateway} dev {qr}",
                f"link set {qr} up",
                f"link set {qg} mtu {INNER_MTU} address {r.qg_mac}",
                f"addr add {r.external} dev {qg}",
                *[f"addr add {fip}/32 dev {qg}" for fip, _ in r.floating],
                f"link set {qg} up",
            ],
        )
        run(in_netns_shared_mounts(ns, ["nft", "-f", "-"]), stdin=self._nat(r, qg))
        self._record(ns, "ready")
        self.announcer.prepare(ns)  # the packet socket, opened now: a standby's activation only sends
        if active:
            self.announce([r])

    def take_over(self, routers: list[Router]) -> None:
        """Standbys that are this host's now: their ports into the bridges' floods and learning (one
        `bridge` for all), then announced."""
        if routers:
            ports = [f"{k}{r.id}" for r in routers for k in ("tq", "tg")]
            batch("bridge", self.host_ns, [f"link set dev {p} {SERVING_FLAGS}" for p in ports])
            self.announce(routers)

    def stand_by(self, routers: list[str]) -> None:
        """Routers served here until now and bound elsewhere: their ports out of the floods (the node
        agent has shut their gates already: the flags are about the floods, not about safety)."""
        if routers:
            ports = [f"{k}{r}" for r in routers for k in ("tq", "tg")]
            batch("bridge", self.host_ns, [f"link set dev {p} {STANDBY_FLAGS}" for p in ports])

    def announce(self, routers: list[Router]) -> None:
        """Gratuitous ARP for every address of the routers, on qg (its address and floating IPs) and on qr
        (the gateway: the VMs' replies must find the new node at once too), to the MAC the bridges pin to
        their uplinks (dataplane.ANNOUNCE_MAC): the router's MAC keeps its place on the new node, so the
        switches must learn, and no host needs to see it. Nothing waits: the frames go from a thread."""
        items = []
        for r in routers:
            ns = router_netns(self.host, r.id)
            qg = [r.external.split("/")[0], *[fip for fip, _ in r.floating]]
            gateway = r.gateway.split("/")[0]
            items.append(garp.Announcement(ns, f"qg-{r.id}", r.qg_mac, tuple(qg), ANNOUNCE_MAC))
            items.append(garp.Announcement(ns, f"qr-{r.id}", r.qr_mac, (gateway,), ANNOUNCE_MAC))
        self.announcer.announce(items)

    @staticmethod
    def _nat(r: Router, qg: str) -> str:
        """nftables: DNAT of each floating IP, SNAT of its VM, SNAT of the rest to the router address."""
        ext = r.external.split("/")[0]
        # Interface names are quoted: unquoted, nft reads "qg-r0000" as an expression with a minus.
        dnat = "".join(f"    ip daddr {fip} dnat to {fixed}\n" for fip, fixed in r.floating)
        snat = "".join(f'    oifname "{qg}" ip saddr {fixed} snat to {fip}\n' for fip, fixed in r.floating)
        return (
            "table ip nat\ndelete table ip nat\ntable ip nat {\n  chain pre {\n"
            "    type nat hook prerouting priority -100;\n"
            f"{dnat}  }}\n  chain post {{\n    type nat hook postrouting priority 100;\n{snat}"
            f'    oifname "{qg}" ip saddr {r.tenant_cidr} snat to {ext}\n  }}\n}}\n'
        )

    def remove(self, router: str) -> None:
        ns = router_netns(self.host, router)
        self.announcer.forget(ns)  # an open socket would keep the namespace alive
        system.delete_netns(ns)  # its veths go with it, and their peers on the host's bridges
        self._record(ns, None)


class LabRouterHost:
    """The node agent's view of the routers the lab L3 agent built on one host (agent.node.RouterHost)."""

    def __init__(self, lab: LabPlan, host: str) -> None:
        self.host = host
        self.realiser = RouterRealiser(lab, host)

    def present(self) -> dict[str, str]:
        built = {r: router_netns(self.host, r) for r in self.realiser.present()}
        return {r: ns for r, ns in built.items() if system.netns_exists(ns)}

    def version(self) -> object:
        try:
            return record_file(self.host).stat().st_mtime_ns
        except OSError:
            return None

    def remove(self, router: str) -> None:
        self.realiser.remove(router)

    def opened(self, namespaces: list[str]) -> None:
        """Nothing to do: the lab L3 agent announces a router as it takes it over."""


class L3Agent:
    def __init__(
        self,
        backend: LabNetworkBackend,
        realiser: RouterRealiser,
        host: str,
        standby: Callable[[], bool] = lambda: False,
    ) -> None:
        self.backend = backend
        self.realiser = realiser
        self.host = host
        # Whether to build every router bound elsewhere too, shut (see the module docstring): asked each
        # tick, because the anchor policies (Neutron's, the paper's) have no standbys.
        self.standby = standby
        self.mine: frozenset[str] = frozenset()  # bound here at the last tick
        self.definitions: dict[str, Router] = {}  # a router's definition does not change: read it once

    def tick(self) -> str:
        """Observe the bindings, decide, act; one sentence saying what it did."""
        bindings = self.backend.bindings()
        mine = frozenset(r for r, h in bindings.items() if h == self.host)
        others = set(self.backend.routers()) - mine if self.standby() else set()
        todo = decide(set(mine) | others, self.realiser.present(), mine, self.mine)
        self.mine = mine
        # Standbys taking over first: they are what a failover waits for.
        self.realiser.take_over([self._definition(r) for r in todo.announce])
        self.realiser.stand_by(list(todo.demote))
        for router in todo.remove:
            self.realiser.remove(router)
            self.definitions.pop(router, None)
        # Own routers first, then standbys; in parallel: a node taking over a failed node's routers must
        # not build them one after another.
        order = sorted(todo.build, key=lambda r: r not in mine)
        with ThreadPoolExecutor(max_workers=BUILDERS, initializer=_background) as pool:
            list(pool.map(lambda r: self.realiser.build(self._definition(r), r in mine), order))
        if not todo.build and not todo.remove and not todo.announce and not todo.demote:
            return f"hosting {len(mine)} routers, {len(others)} standing by, nothing to change"
        return (
            f"built {len(todo.build)} ({len(set(todo.build) & mine)} to serve), removed {len(todo.remove)}, "
            f"took over {len(todo.announce)} standbys, {len(todo.demote)} became standbys; hosting "
            f"{len(mine)}, {len(others)} standing by"
        )

    def _definition(self, router: str) -> Router:
        if router not in self.definitions:
            self.definitions[router] = Router.from_json(self.backend.definition(router))
        return self.definitions[router]


def _background() -> None:
    """Builders run niced, and so do the `ip`/`nft` they start (a child inherits its thread's nice
    value): a thousand standbys being built must not starve the lease holders of the CPU. On 2 cores
    they did: node and leader leases lapsed and routers moved to and fro."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BUILD_NICE)


def main() -> None:
    run_agent(sys.argv[1], sys.argv[2])


def run_agent(inventory: str, host: str) -> None:
    """The agent's loop, until the process is stopped (`hastack lab l3-agent INVENTORY HOST`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = plan(load_deployment(inventory))
    dep = p.deployment
    store = open_store(dep)
    backend = LabNetworkBackend(store, dep.name, time.time, agent_down_s=3 * REPORT_INTERVAL_S)
    realiser = RouterRealiser(p, host)
    standby = dep.inventory.lab.standby_routers and realiser.gated  # never without a gate to keep it shut

    def standby_now() -> bool:
        kv = store.get(keys.policy_key(dep.name))
        return standby and (kv is None or kv.value == "hastack")

    agent = L3Agent(backend, realiser, host, standby_now)
    stop = threading.Event()
    # Liveness is reported from a thread of its own, with a client of its own: a long tick (many routers
    # to build) must not make a healthy agent look dead.
    reporter = LabNetworkBackend(open_store(dep), dep.name, time.time, agent_down_s=3 * REPORT_INTERVAL_S)
    threading.Thread(target=_report_forever, args=(reporter, host, stop), daemon=True).start()
    bindings = keys.bindings_prefix(dep.name)
    while not stop.is_set():
        try:
            _kvs, revision = store.get_prefix(bindings)
            sentence = agent.tick()
            if not sentence.endswith("nothing to change"):
                log.info(sentence)
            store.wait(bindings, revision, REPORT_INTERVAL_S)
        except (StoreError, BackendError, LabError) as e:
            log.warning("tick failed: %s", e)
            stop.wait(0.5)


def _report_forever(backend: LabNetworkBackend, host: str, stop: threading.Event) -> None:
    while True:
        try:
            backend.report(host)
        except BackendError as e:
            log.warning("report failed: %s", e)
        if stop.wait(REPORT_INTERVAL_S):
            return


if __name__ == "__main__":
    main()
