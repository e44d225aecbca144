"""`hastack bench scale`: a network node hosting N routers fails; how long until every one answers again.

One trial: the network node that hosts the most routers is given extra routers (`lab.topology.
scale_routers`: no VMs, a gateway port each on the external network) until it hosts N; a sweep from the
client sends every router's external address an echo request every 200 ms (`bench/sweep.py`); once every
router has answered for a second, the node is cut (or its L3 agent killed); the sweep goes on until every
router has answered for a second again, from its new node. A router answers only when its namespace is
built, wired, and its kernel gate open (the gate's output hook drops replies while shut), so "answers
again" is "serves again". Reported per trial, recomputed from the rounds: when the last router was back,
the median router, how many never came back; and from the controller's history when it made its first
and last move off the node (detection, then the moves; the rest is the routers being built).

The extra routers stay from trial to trial (each size adds to the last) and are removed at the end.
With many routers two machine-wide kernel limits are too small: the neighbour table (one for every
namespace on the machine, `net.ipv4.neigh.default.gc_thresh3`, 1024 by default) for the client's and the
routers' entries, and the per-CPU backlog (`net.core.netdev_max_backlog`, 1000) for a broadcast's copies
to a thousand router ports. Both are raised for the run and put back afterwards (`kernel_limits`).
"""

from __future__ import annotations

import json
import platform
import queue
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hastack.bench import lablink
from hastack.bench.failover import hosting, wait_healthy
from hastack.lab import dataplane, realise, system
from hastack.lab.hadaemons import ctl
from hastack.lab.l3agent import LabRouterHost
from hastack.lab.plan import LabPlan
from hastack.lab.state import LabState
from hastack.lab.topology import SCALE_PREFIX, network_plan, scale_routers

SIZES = (54, 200, 1000)
SCENARIOS = {"node-cut": ("cut", "{host}"), "l3-kill": ("kill", "l3-agent:{host}")}
INTERVAL_S = 0.2
STEADY_ROUNDS = 5  # a second of rounds every router answered: up before the fault, back after it
GOAL_S = {1000: 3.0}


@dataclass
class ScaleTrial:
    routers: int
    scenario: str
    node: str
    all_back_s: float | None  # the last router's return; None: some never came back
    median_back_s: float | None
    lost: int  # routers that missed a round after the fault
    never_back: int
    first_move_s: float | None  # the controller's first and last move off the node, after the fault
    last_move_s: float | None
    targets: list[str] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # t relative to the fault, missing

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def figures(rounds: Sequence[dict[str, Any]], count: int) -> dict[str, Any]:
    """From the sweep's rounds (t relative to the fault): per router that missed a round after the
    fault, the start of the first round it answered after its last miss. Pure."""
    after = sorted((r for r in rounds if r["t"] >= 0), key=lambda r: r["t"])
    last_miss: dict[int, float] = {}
    back: dict[int, float | None] = {}
    for r in after:
        missing = set(r["missing"])
        for i in missing:
            last_miss[i], back[i] = r["t"], None
        for i in [i for i, b in back.items() if b is None and i not in missing]:
            back[i] = r["t"]
    returned = sorted(b for b in back.values() if b is not None)
    never = sum(b is None for b in back.values())
    return {
        "all_back_s": None if never else round(max(returned, default=0.0), 3),
        "median_back_s": round(statistics.median(returned), 3) if returned else None,
        "lost": len(back),
        "never_back": never,
    }


def kernel_limits(routers: int) -> list[tuple[str, int]]:
    """The machine-wide limits a lab with `routers` routers on one node needs, in the order to raise them
    (gc_thresh2 must stay <= gc_thresh3 at every step). Pure."""
    neighbours = 4 * routers + 2048
    return [
        ("net.ipv4.neigh.default.gc_thresh3", neighbours),
        ("net.ipv4.neigh.default.gc_thresh2", neighbours // 2),
        # A bridge floods a broadcast to all its ports in one pass, and each copy waits in this CPU's
        # backlog (veth hands it over with netif_rx): past netdev_max_backlog (1000) the copies are dropped,
        # and always for the same ports, the oldest, last in the bridge's list. With 1000 routers on one
        # node the first ones built never saw an ARP request and never answered (measured, 3 of 1000).
        ("net.core.netdev_max_backlog", 8 * routers + 2048),
    ]


@contextmanager
def kernel_room(limits: Sequence[tuple[str, int]], progress: Callable[[str], None]) -> Iterator[None]:
    """Each sysctl below its minimum raised to it, in order, for the duration; the old values put back
    in the reverse order."""
    raised: list[tuple[Path, str]] = []
    try:
        for name, least in limits:
            path = Path("/proc/sys", *name.split("."))
            was = int(path.read_text())
            if was < least:
                progress(f"raising the kernel's {name} from {was} to {least} for the run")
                path.write_text(str(least))
                raised.append((path, str(was)))
        yield
    finally:
        for path, value in reversed(raised):
            path.write_text(value)


class Sweep:
    """The sweep probe in the client's namespace; its rounds as they come, t made relative later."""

    def __init__(self, targets: Sequence[str], seconds: float) -> None:
        self.proc = lablink.start_probe(
            dataplane.client_netns(),
            "sweep",
            "--targets",
            ",".join(targets),
            "--seconds",
            str(round(seconds)),
            "--interval",
            str(INTERVAL_S),
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.rounds: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def until_steady(self, since: float, timeout_s: float) -> bool:
        """Until STEADY_ROUNDS rounds in a row started after `since` had every router answer."""
        deadline, full = time.monotonic() + timeout_s, 0
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                return False
            if "seq" not in line:
                continue
            self.rounds.append(line)
            full = full + 1 if not line["missing"] and line["t"] >= since else 0
            if full >= STEADY_ROUNDS:
                return True
        return False

    def stop(self) -> str:
        self.proc.terminate()
        _out, err = self.proc.communicate(timeout=10)
        return err.strip()


def _routerctl(lab: LabPlan, *args: str) -> Any:
    return realise.routerctl(lab, LabState.load(), *args)


def _clear_extra(lab: LabPlan, timeout_s: float) -> None:
    """Forget every extra router and wait until no network node has one built."""
    _routerctl(lab, "scale-remove")
    nodes = [LabRouterHost(lab, h) for h in lab.deployment.hosts_of("l3-agent")]
    system.poll(
        "the extra routers removed from every network node",
        lambda: not any(r.startswith(SCALE_PREFIX) for n in nodes for r in n.realiser.present()),
        timeout=timeout_s,
        interval=0.5,
    )


def _built(
    lab: LabPlan, node: str, routers: list[str], timeout_s: float, progress: Callable[[str], None]
) -> None:
    """Until `node` has built every router, and every other network node its standby of each
    (lab.standby_routers)."""
    hosts = [node]
    if lab.deployment.inventory.lab.standby_routers:
        hosts += [h for h in lab.deployment.hosts_of("l3-agent") if h != node]
    progress(f"  waiting until {', '.join(hosts)} have built {len(routers)} routers")
    built = [LabRouterHost(lab, h) for h in hosts]
    system.poll(
        f"{len(routers)} routers built on {', '.join(hosts)}",
        lambda: all(set(routers) <= b.realiser.present() for b in built),
        timeout=timeout_s,
        interval=0.5,
    )


def _moves(lab: LabPlan, inventory: str, node: str, injected: float) -> tuple[float | None, float | None]:
    times = [
        e["time"] - injected
        for e in ctl(lab, "history", "--since", str(injected))
        if e["time"] >= injected and any(m["from"] == node and not m.get("error") for m in e["moves"])
    ]
    return (round(min(times), 3), round(max(times), 3)) if times else (None, None)


def run_trial(
    lab: LabPlan, inventory: str, count: int, scenario: str, progress: Callable[[str], None]
) -> ScaleTrial:
    ctl(lab, "policy", "hastack")
    wait_healthy(lab, inventory)
    placed = hosting(lab, inventory)
    node = max(sorted(placed), key=lambda h: len(placed[h]))
    own = [r for r in network_plan(lab.deployment).routers if r.id in placed[node]]
    extra = scale_routers(lab.deployment, max(0, count - len(own)))
    targets = [r.external.split("/")[0] for r in (*own, *extra)]
    budget = 30 + 0.3 * count  # seconds to build them all, at well under the rate measured (~14/s)
    progress(f"scale {count} / {scenario}: {len(extra)} extra routers on {node} ({len(own)} of its own)")
    # The extra routers of earlier trials stay (they moved with the failover): only the missing are added.
    _routerctl(lab, "scale-remove", str(len(extra)))
    _routerctl(lab, "scale-add", str(len(extra)), node)
    # Built first, swept after: while routers are missing, every round's echo requests to them are ARP
    # broadcasts that reach every router port on the fabric (a storm that starved the lab at 1000).
    _built(lab, node, [r.id for r in (*own, *extra)], budget, progress)
    sweep = Sweep(targets, min(600, budget + 60))
    try:
        if not sweep.until_steady(0, 30 + count / 50):
            raise system.LabError(f"not every one of {count} routers on {node} answered the sweep")
        kind, target = SCENARIOS[scenario]
        progress(f"  all {count} answer; {scenario} on {node}")
        injected = lablink.inject(lab, (kind, target.format(host=node)))
        steady = sweep.until_steady(injected, budget)
    finally:
        problem = sweep.stop()
        lablink.heal(lab)
    if not sweep.rounds:
        raise system.LabError(f"the sweep sent no rounds: {problem}")
    first_move, last_move = _moves(lab, inventory, node, injected)
    rounds = [{"t": round(r["t"] - injected, 3), "missing": r["missing"]} for r in sweep.rounds]
    f = figures(rounds, len(targets))
    progress(
        f"  all back after {f['all_back_s']} s (median router {f['median_back_s']} s; controller moved "
        f"{first_move}..{last_move} s){'' if steady else '; NOT all back within the budget'}"
    )
    return ScaleTrial(
        count,
        scenario,
        node,
        **f,
        first_move_s=first_move,
        last_move_s=last_move,
        targets=targets,
        rounds=rounds,
    )


def summarise(trials: Sequence[ScaleTrial]) -> list[dict[str, Any]]:
    """Per size and scenario: median and worst time until every router was back. Pure."""
    rows = []
    for key in sorted({(t.routers, t.scenario) for t in trials}):
        mine = [t for t in trials if (t.routers, t.scenario) == key]
        back = [t.all_back_s for t in mine if t.all_back_s is not None]
        moved = [t.last_move_s for t in mine if t.last_move_s is not None]
        rows.append(
            {
                "routers": key[0],
                "scenario": key[1],
                "trials": len(mine),
                "median_all_back_s": round(statistics.median(back), 3) if back else None,
                "worst_all_back_s": max(back) if len(back) == len(mine) else None,
                "median_last_move_s": round(statistics.median(moved), 3) if moved else None,
                "never_back": sum(t.never_back for t in mine),
                "goal_s": GOAL_S.get(key[0]),
            }
        )
    return rows


def run(
    lab: LabPlan,
    inventory: str,
    sizes: Sequence[int],
    scenario: str,
    repeat: int,
    out_dir: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Every size, `repeat` times; writes OUT/scale.json and OUT/scale.png."""
    scale_routers(
        lab.deployment, max(sizes)
    )  # the address ranges must hold the largest: fail before any work
    started = time.time()
    trials: list[ScaleTrial] = []
    with kernel_room(kernel_limits(max(sizes)), progress):
        try:
            for count in sorted(sizes):  # growing: each size adds to the routers of the one before
                for _ in range(repeat):
                    trials.append(run_trial(lab, inventory, count, scenario, progress))
        except BaseException as failed:
            # The clean-up must not hide why the run stopped: its own failure is said, the cause raised.
            progress(f"stopped: {failed}; removing the extra routers")
            try:
                _clear_extra(lab, 60 + 0.3 * max(sizes))
            except system.LabError as e:
                progress(f"  and the clean-up failed too: {e}")
            raise
        progress("removing the extra routers")
        _clear_extra(lab, 60 + 0.3 * max(sizes))
    result = {
        "experiment": "a network node hosting N routers fails: time until every router answers again",
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "started": started,
        "seconds": round(time.time() - started, 1),
        "interval_s": INTERVAL_S,
        "summary": summarise(trials),
        "trials": [t.as_dict() for t in trials],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scale.json").write_text(json.dumps(result))
    plot(trials, out_dir / "scale.png")
    return result


def plot(trials: Sequence[ScaleTrial], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curve, bars) = plt.subplots(1, 2, figsize=(13, 4))
    sizes = sorted({t.routers for t in trials})
    for count in sizes:
        t = next(x for x in trials if x.routers == count)
        xs = [r["t"] for r in t.rounds]
        ys = [100 * (1 - len(r["missing"]) / len(t.targets)) for r in t.rounds]
        curve.plot(xs, ys, drawstyle="steps-post", label=f"{count} routers")
    curve.axvline(0, color="black", linewidth=0.8)
    curve.axvline(3.0, color="tab:green", linestyle="--", linewidth=0.8, label="goal for 1000: 3 s")
    curve.set_xlabel("seconds after the fault")
    curve.set_ylabel("routers answering (%)")
    curve.set_title(f"{trials[0].scenario} of the node hosting them: first trial per size", fontsize=9)
    curve.legend(fontsize=7)
    for i, count in enumerate(sizes):
        back = [t.all_back_s for t in trials if t.routers == count and t.all_back_s is not None]
        if back:
            bars.bar(i, statistics.median(back), color="tab:green")
            bars.scatter([i] * len(back), back, color="black", s=8, zorder=3)
    bars.axhline(3.0, color="tab:green", linestyle="--", linewidth=0.8)
    bars.set_xticks(range(len(sizes)), [str(s) for s in sizes])
    bars.set_xlabel("routers on the failed node")
    bars.set_ylabel("until every router answers (s)")
    bars.set_title("median, every trial as a dot", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
