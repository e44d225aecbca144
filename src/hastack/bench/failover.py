"""Network-node failover, measured the way the paper's Figure 4b does, and on the data plane besides.

One trial: pick a VM whose router lives on a network node, ping its floating IP from the client every
100 ms, sample every router's kernel gate on every network node, inject a fault (`l3-kill`: SIGKILL of
the node's L3 agent; `node-cut`: its links down; `node-freeze`: SIGSTOP of every process on it;
`leader-kill`: its L3 agent and, at the same moment, the leader controller; `agent-freeze`: SIGSTOP of
its node agent; `etcd-quorum`: two of three etcd members killed; `etcd-partition`: the node cut off
from every etcd host, nothing else; `etcd-leader-freeze`: SIGSTOP of etcd's leader), hold it, heal it
inside the measured window and keep watching a few seconds after the heal (a failover is over only when
the fault is healed and the system has settled), and report:
- the connectivity gap while the fault held: pings lost in a row x the interval (the paper: "a gap of
  pongs ... about 11 s"), and the worst gap after the heal, apart;
- dual-active time: how long any router's gate was open on two nodes at once (0 is the promise);
- which nodes actually forwarded the VM's router (gate counters), and how many routers the controller
  moved between before the fault and after the heal.
Used by `hastack bench failover` and by the lab tests; the policy is switched with `hastack ctl policy`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from hastack.bench import lablink
from hastack.bench.gates import GateSampler, dual_active, dual_forwarding, forwarding_nodes
from hastack.lab import dataplane, realise, system
from hastack.lab.hadaemons import ctl
from hastack.lab.l3agent import router_netns
from hastack.lab.openstack import neutron
from hastack.lab.plan import LabPlan
from hastack.lab.state import LabState
from hastack.lab.topology import network_plan

# Each scenario is the faults injected at once; {host} is the network node, {leader} the leader controller,
# {etcd_leader} the etcd member that leads, {etcd1}/{etcd2} the first two etcd hosts; a fault naming
# {etcd} is injected once per etcd host.
SCENARIOS: dict[str, tuple[tuple[str, str], ...]] = {
    "l3-kill": (("kill", "l3-agent:{host}"),),
    "node-cut": (("cut", "{host}"),),
    "node-freeze": (("freeze-host", "{host}"),),
    "leader-kill": (("kill", "l3-agent:{host}"), ("kill", "hastack-controller:{leader}")),
    "agent-freeze": (("freeze", "hastack-agent:{host}"),),
    "etcd-quorum": (("kill", "etcd:{etcd1}"), ("kill", "etcd:{etcd2}")),
    "etcd-partition": (("partition", "{host}:{etcd}"),),
    "etcd-leader-freeze": (("freeze", "etcd:{etcd_leader}"),),
}
# Faults of the control plane only: nothing should move, and the data plane should not notice.
CONTROL_PLANE = ("etcd-quorum", "etcd-leader-freeze")
HOLD_S = {"etcd-quorum": 30.0}  # how long a scenario's fault holds (default: the policy's trial length)
INTERVAL_S = 0.1
BEFORE_S = 2.0
AFTER_HEAL_S = 4.0  # watched after the heal: a second outage then was missed while trials stopped first
SETTLE_S = 0.5  # a fault takes effect a few ms after the instant recorded for it


@dataclass
class Trial:
    policy: str
    scenario: str
    node: str
    vm: str
    router: str
    gap_s: float | None  # None: the ping never came back while the fault held
    lost: int
    pings: int
    dual_active_s: float
    dual_active_by_router: dict[str, float]
    forwarders: list[str]  # nodes that forwarded the VM's router from SETTLE_S after the fault on
    after_fault: list[dict[str, Any]] = field(default_factory=list)  # ping samples, relative times
    healed_at_s: float | None = None  # when the heal began, after the fault
    gap_after_heal_s: float | None = 0.0  # the worst gap from the heal on (None: never back)
    moved: int = 0  # routers bound elsewhere after the heal than before the fault
    dual_forwarding_s: float = 0.0  # the longest time any router's packets went through two nodes at once

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gap_s(samples: Sequence[dict[str, Any]], since: float, interval_s: float) -> tuple[float | None, int]:
    """The longest time without a pong received after `since`, less one interval (so 3 pings lost at 100 ms
    make 0.3 s), counted on the times pongs *arrived*: a reply the client's kernel held back (its ARP
    unresolved) and delivered late is an outage until it arrives, though its request was not lost. Also
    how many pings were reported lost, and None if no pong came after the last one lost. Time-based, not
    a count: ping sends more slowly while the target is unreachable. Pure."""
    after = [s for s in samples if s["t"] >= since - interval_s]
    lost = [s for s in after if not s["ok"]]
    pongs = sorted(s["t"] for s in after if s["ok"])
    if not lost:
        return 0.0, 0
    if not pongs or max(s["t"] for s in lost) > pongs[-1]:
        return None, len(lost)
    # The outage runs from the last pong before it: one just before `since` counts.
    previous = max((t for t in pongs if t <= since), default=since)
    longest = 0.0
    for t in pongs:
        if t > previous:
            longest = max(longest, t - previous - interval_s)
            previous = t
    return round(max(longest, 0.0), 3), len(lost)


def gaps(
    samples: Sequence[dict[str, Any]], injected: float, healed: float | None
) -> tuple[float | None, int, float | None]:
    """The gap while the fault held (and how many pings were lost then), and the worst gap from the heal
    on (0 when the trial healed after it stopped pinging, as trials did before). Pure."""
    until = float("inf") if healed is None else healed
    gap, lost = gap_s([s for s in samples if s["t"] < until], injected, INTERVAL_S)
    if healed is None:
        return gap, lost, 0.0
    after, _lost = gap_s([s for s in samples if s["t"] >= healed - INTERVAL_S], healed, INTERVAL_S)
    return gap, lost, after


def trial_seconds(policy: str, openstack: bool = False) -> float:
    """How long to watch: past the policy's worst-case detection (paper: 9 + 40 s; neutron: 150 + 37.5 s),
    and under profile openstack past Neutron rebuilding the routers too (seconds each, not prebuilt).
    Real Neutron reschedules a router once its agent has not reported for 2 x agent_down_time (150 s),
    checking every agent_down_time / 2 (37 s): up to 187 s after the last report, then the build."""
    if openstack:
        return {"hastack": 90.0, "neutron": 330.0}.get(policy, 180.0)
    return {"hastack": 8.0, "paper": 60.0, "neutron": 200.0}.get(policy, 30.0)


def hosting(lab: LabPlan, inventory: str, timeout_s: float = 15.0) -> dict[str, list[str]]:
    """Network node -> its routers, in the view of a controller that has read the store. While no
    controller leads (one was just killed) `ctl status` asks any, and one whose last tick could not reach
    etcd (a loaded machine) knows no nodes: ask again."""
    status: dict[str, Any] = {}

    def has_nodes() -> bool:
        nonlocal status
        status = ctl(lab, "status")
        return "nodes" in status

    system.poll("a controller's view of the network nodes", has_nodes, timeout=timeout_s, interval=0.2)
    return {n["host"]: n["routers"] for n in status["nodes"]}


def wait_healthy(lab: LabPlan, inventory: str, timeout_s: float = 60) -> dict[str, Any]:
    """Until the leader sees every network node healthy (stable long enough to take routers)."""
    status: dict[str, Any] = {}

    def healthy() -> bool:
        nonlocal status
        try:
            status = ctl(lab, "status")
        except system.LabError:
            return False
        return bool(status.get("leader")) and all(n["failed"] is None for n in status.get("nodes", []))

    system.poll(
        "every network node healthy in the controller's view", healthy, timeout=timeout_s, interval=0.5
    )
    time.sleep(2.5)  # the controller's hysteresis: a node that came back takes routers after 2 s
    return status


def router_namespaces(lab: LabPlan, inventory: str) -> tuple[dict[str, str], Callable[[str, str], str]]:
    """The lab's router names -> the backend's router ids, and (node, router name) -> the namespace whose
    gate the sampler reads: the lab L3 agent's, or under profile openstack Neutron's qrouter- one."""
    routers = network_plan(lab.deployment).routers
    if lab.deployment.inventory.lab.profile != "openstack":
        return {r.id: r.id for r in routers}, router_netns
    ids, state = neutron.router_ids(lab, inventory), LabState.load()
    return ids, lambda host, name: neutron.router_namespace(state, host, ids[name])


@contextmanager
def policy_in_force(lab: LabPlan, policy: str, progress: Callable[[str], None]) -> Iterator[None]:
    """The lab set up for `policy`'s trials. Under profile openstack the `neutron` anchor is real Neutron's
    own allow_automatic_l3agent_failover, switched on for its trials only (hastack's controller then moves
    nothing and its record follows Neutron)."""
    real_neutron = policy == "neutron" and lab.deployment.inventory.lab.profile == "openstack"
    if real_neutron:
        lablink.neutron_auto_failover(lab, True, progress)
    try:
        yield
    finally:
        if real_neutron:
            lablink.neutron_auto_failover(lab, False, progress)


def expand(lab: LabPlan, scenario: str, host: str, leader: str) -> list[tuple[str, str]]:
    """The scenario's faults with their targets named. Reads the lab (who leads etcd) only if asked."""
    etcd = lab.deployment.hosts_of("etcd")
    names = {"host": host, "leader": leader, "etcd1": etcd[0], "etcd2": etcd[1 % len(etcd)]}
    if any("{etcd_leader}" in target for _kind, target in SCENARIOS[scenario]):
        names["etcd_leader"] = realise.etcd_leader(lab)
    out = []
    for kind, target in SCENARIOS[scenario]:
        hosts = etcd if "{etcd}" in target else [""]
        out += [(kind, target.format(etcd=e, **names)) for e in hosts]
    return out


def run_trial(
    lab: LabPlan,
    inventory: str,
    scenario: str,
    policy: str,
    progress: Callable[[str], None] = lambda _s: None,
) -> Trial:
    ctl(lab, "policy", policy)
    leader = wait_healthy(lab, inventory)["host"]
    placed = hosting(lab, inventory)
    node = max(sorted(placed), key=lambda h: len(placed[h]))  # the node that hosts the most routers
    n = network_plan(lab.deployment)
    ids, namespace = router_namespaces(lab, inventory)
    vm = next(v for v in n.vms if ids[v.router] in placed[node])
    nodes = lab.deployment.hosts_of("l3-agent")
    sampler = GateSampler({(h, r.id): namespace(h, r.id) for h in nodes for r in n.routers})
    hold = HOLD_S.get(scenario, trial_seconds(policy, lab.deployment.inventory.lab.profile == "openstack"))
    seconds = BEFORE_S + hold + AFTER_HEAL_S
    progress(
        f"{policy} / {scenario}: pinging {vm.floating} ({vm.name}, {vm.router} on {node}); the fault holds "
        f"{hold:.0f} s, then heals, watched {AFTER_HEAL_S:.0f} s more"
    )
    faults = expand(lab, scenario, node, leader)
    ping = lablink.start_probe(
        dataplane.client_netns(), "ping", "--target", vm.floating, "--seconds", str(seconds + 5),
        "--interval", str(INTERVAL_S),
    )  # fmt: skip
    sampler.start()
    time.sleep(BEFORE_S)
    injected = lablink.inject(lab, *faults)
    time.sleep(max(0.0, injected + hold - time.time()))
    healed = time.time()
    lablink.heal(lab)
    time.sleep(max(0.0, healed + AFTER_HEAL_S - time.time()))
    ping.terminate()
    out, _err = ping.communicate(timeout=30)
    samples = [json.loads(line) for line in out.splitlines()]
    gates = sampler.stop()
    after = hosting(lab, inventory)
    moved = sum(1 for h, routers in placed.items() for r in routers if r not in after.get(h, []))
    return _trial(policy, scenario, node, vm, samples, gates, injected, healed, moved)


def _trial(
    policy: str,
    scenario: str,
    node: str,
    vm: Any,
    samples: list[dict[str, Any]],
    gates: list[Any],
    injected: float,
    healed: float,
    moved: int,
) -> Trial:
    """The figures of one trial from its samples. Pure."""
    gap, lost, after_heal = gaps(samples, injected, healed)
    overlap = dual_active(gates)
    return Trial(
        policy,
        scenario,
        node,
        vm.name,
        vm.router,
        gap,
        lost,
        len(samples),
        round(max(overlap.values(), default=0.0), 3),
        {r: round(v, 3) for r, v in overlap.items()},
        sorted({h for t, h in forwarding_nodes(gates, vm.router) if t >= injected + SETTLE_S}),
        [
            {"t": round(s["t"] - injected, 3), "ok": s["ok"], "seq": s["seq"]}
            for s in samples
            if s["t"] >= injected - 0.5
        ],
        round(healed - injected, 3),
        after_heal,
        moved,
        round(max(dual_forwarding(gates).values(), default=0.0), 3),
    )
