"""The lab L3 agent: the lab's stand-in for neutron-l3-agent, one process per network node.

It reports liveness to the lab network service every `report_interval`, and each tick it observes which
routers the service binds to its host, decides (pure diff) which to build and which to remove, and acts:
a router is a namespace `hs-<host>-<router>` with a qr- port on its tenant VLAN (the gateway, MAC fixed),
a qg- port on the external VLAN with the router's address and its floating IPs, forwarding, SNAT and DNAT
in nftables, and gratuitous ARP on bring-up. Like Neutron's, when this process dies its routers keep
forwarding: the kernel state stays. Every namespace it makes is recorded in its own file (teardown reads
it). Between ticks it waits on the store, so a new binding is acted on at once.

    hastack lab l3-agent INVENTORY HOST      (python -m hastack.lab.l3agent INVENTORY HOST)
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hastack.agent import gate
from hastack.backends import BackendError, LabNetworkBackend
from hastack.backends.lab import net_prefix
from hastack.lab import system
from hastack.lab.dataplane import INNER_MTU, batch, bridge
from hastack.lab.network import EXTERNAL_VLAN, Router
from hastack.lab.plan import LAB_ROOT, PREFIX, LabPlan, plan
from hastack.lab.system import LabError, in_netns_shared_mounts, run
from hastack.model import load_deployment
from hastack.render.etcd import client_endpoints
from hastack.store import EtcdStore, StoreError

REPORT_INTERVAL_S = 1.0
BUILDERS = 8
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


def decide(wanted: set[str], present: set[str]) -> Plan:
    """Which routers to build and which to remove so that this host hosts exactly `wanted`. Pure."""
    return Plan(tuple(sorted(wanted - present)), tuple(sorted(present - wanted)))


class RouterRealiser:
    """Kernel state of the routers on one host."""

    def __init__(self, p: LabPlan, host: str) -> None:
        self.host = host
        self.host_ns = p.host(host).netns
        # Routers are born behind a shut kernel gate only where a hastack node agent will open it.
        self.gated = host in p.deployment.hosts_of("hastack-agent")
        self._garps: list[subprocess.Popen[bytes]] = []
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

    def build(self, r: Router) -> None:
        """Build the router from a clean slate (a half-built one from a failed attempt goes first)."""
        ns = router_netns(self.host, r.id)
        self._record(ns, "building")
        system.delete_netns(ns)
        system.ensure_netns(ns)
        tq, tg, qr, qg = f"tq{r.id}", f"tg{r.id}", f"qr-{r.id}", f"qg-{r.id}"
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
                f"link set {tq} master {bridge(r.vlan)} up",
                f"link set {tg} master {bridge(EXTERNAL_VLAN)} up",
            ],
        )
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
        # nsenter --net, not ip netns exec: no mount namespace to set up for every command.
        run(in_netns_shared_mounts(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
        # The kernel gate comes in the same atomic batch as the NAT: a router is born shut, and forwards
        # only once the node agent opens its gate under a live lease.
        run(
            in_netns_shared_mounts(ns, ["nft", "-f", "-"]),
            stdin=self._nat(r, qg) + (gate.RULESET if self.gated else ""),
        )
        self._record(ns, "ready")
        self._announce(ns, qg, [r.external.split("/")[0], *[fip for fip, _ in r.floating]])
        # ...and the gateway on the tenant side: the VMs' replies must find the new node at once too.
        self._announce(ns, qr, [r.gateway.split("/")[0]])

    def _announce(self, ns: str, dev: str, addresses: list[str]) -> None:
        """Gratuitous ARP for every address: whoever cached the old owner learns the new one. Three of
        them, 150 ms apart: one alone can be lost, and the later ones also go out once the node agent has
        opened the gate. Nobody answers an unsolicited ARP, so the agent does not wait: the arpings are
        reaped on later ticks."""
        started = [
            subprocess.Popen(
                in_netns_shared_mounts(
                    ns, ["arping", "-q", "-U", "-c", "3", "-W", "0.15", "-w", "1", "-i", dev, "-S", a, a]
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for a in addresses
        ]
        with self._lock:
            self._garps = [child for child in self._garps if child.poll() is None] + started

    @staticmethod
    def _nat(r: Router, qg: str) -> str:
        """nftables: DNAT of each floating IP, SNAT of its VM, SNAT of the rest to the router address."""
        ext = r.external.split("/")[0]
        # Interface names are quoted: unquoted, nft reads "qg-r0000" as an expression with a minus.
        dnat = "".join(f"    ip daddr {fip} dnat to {fixed}\n" for fip, fixed in r.floating)
        snat = "".join(f'    oifname "{qg}" ip saddr {fixed} snat to {fip}\n' for fip, fixed in r.floating)
        return (
            "flush ruleset\ntable ip nat {\n  chain pre {\n    type nat hook prerouting priority -100;\n"
            f"{dnat}  }}\n  chain post {{\n    type nat hook postrouting priority 100;\n{snat}"
            f'    oifname "{qg}" ip saddr {r.tenant_cidr} snat to {ext}\n  }}\n}}\n'
        )

    def remove(self, router: str) -> None:
        ns = router_netns(self.host, router)
        system.delete_netns(ns)  # its veths go with it, and their peers on the host's bridges
        self._record(ns, None)


class LabRouterHost:
    """The node agent's view of the routers the lab L3 agent built on one host (agent.node.RouterHost)."""

    def __init__(self, p: LabPlan, host: str) -> None:
        self.host = host
        self.realiser = RouterRealiser(p, host)

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


class L3Agent:
    def __init__(self, backend: LabNetworkBackend, realiser: RouterRealiser, host: str) -> None:
        self.backend = backend
        self.realiser = realiser
        self.host = host

    def tick(self) -> str:
        """Observe the bindings, decide, act; one sentence saying what it did."""
        bindings = self.backend.bindings()
        wanted = {r for r, h in bindings.items() if h == self.host}
        todo = decide(wanted, self.realiser.present())
        for router in todo.remove:
            self.realiser.remove(router)
        definitions = [Router.from_json(self.backend.definition(router)) for router in todo.build]
        # In parallel: a node taking over a failed node's routers must not build them one after another.
        with ThreadPoolExecutor(max_workers=BUILDERS) as pool:
            list(pool.map(self.realiser.build, definitions))
        if not todo.build and not todo.remove:
            return f"hosting {len(wanted)} routers, nothing to change"
        return f"built {list(todo.build)}, removed {list(todo.remove)}; hosting {len(wanted)} routers"


def main() -> None:
    run_agent(sys.argv[1], sys.argv[2])


def run_agent(inventory: str, host: str) -> None:
    """The agent's loop, until the process is stopped (`hastack lab l3-agent INVENTORY HOST`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = plan(load_deployment(inventory))
    dep = p.deployment
    endpoints = client_endpoints(dep)
    store = EtcdStore(endpoints)
    backend = LabNetworkBackend(store, dep.name, time.time, agent_down_s=3 * REPORT_INTERVAL_S)
    agent = L3Agent(backend, RouterRealiser(p, host), host)
    stop = threading.Event()
    # Liveness is reported from a thread of its own, with a client of its own: a long tick (many routers
    # to build) must not make a healthy agent look dead.
    reporter = LabNetworkBackend(
        EtcdStore(endpoints), dep.name, time.time, agent_down_s=3 * REPORT_INTERVAL_S
    )
    threading.Thread(target=_report_forever, args=(reporter, host, stop), daemon=True).start()
    bindings = net_prefix(dep.name) + "bindings/"
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
