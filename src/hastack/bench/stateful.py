"""The stateful building blocks under failure: the VIP, Galera and RabbitMQ.

- `vip`: Keystone through the VIP every 50 ms; the master load-balancer host (the VIP holder) is cut.
  Figures: failed requests, the gap (first failure to the next answer), the worst latency.
- `db`: an INSERT through the VIP every 50 ms (autocommit; a sample is ok only once the commit returned);
  the Galera node taking the writes is killed. Figures: acknowledged commits missing on any node after the
  heal (must be 0), the error window (first to last failed write).
- `mq`: confirmed publishing to a quorum queue every 20 ms; the node holding its leader is killed; then the
  queue is drained from the survivors. Figures: confirmed messages not received (must be 0), the stall
  (longest time without a confirm after the kill).
Every figure is computed from the samples the trial keeps (`figures_*` are pure).
"""

from __future__ import annotations

import itertools
import json
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hastack.bench import lablink
from hastack.bench.probe import rows as probe_rows
from hastack.lab import galera, loadbalancer, rabbitmq
from hastack.lab.plan import LabPlan

Samples = Sequence[dict[str, Any]]


def figures_vip(samples: Samples) -> dict[str, Any]:
    after = [s for s in samples if s["t"] >= 0]
    failed = [s for s in after if not s["ok"]]
    gap = 0.0
    if failed:
        back = [s["t"] for s in after if s["ok"] and s["t"] > failed[-1]["t"]]
        gap = round((back[0] if back else after[-1]["t"]) - failed[0]["t"], 3)
    return {"failed": len(failed), "gap_s": gap, "max_ms": max((s["ms"] for s in after), default=0.0)}


def figures_db(samples: Samples, stored: dict[str, set[int]], interval_s: float) -> dict[str, Any]:
    acknowledged = {s["seq"] for s in samples if s["ok"]}
    missing = {host: sorted(acknowledged - seqs) for host, seqs in stored.items()}
    failed = [s["t"] for s in samples if not s["ok"] and s["t"] >= 0]
    window = round(failed[-1] - failed[0] + interval_s, 3) if failed else 0.0
    return {
        "acknowledged": len(acknowledged),
        "lost": max((len(m) for m in missing.values()), default=0),
        "missing_by_host": {h: m[:20] for h, m in missing.items()},
        "error_window_s": window,
    }


def figures_mq(samples: Samples, received: set[int]) -> dict[str, Any]:
    confirmed = [s for s in samples if s["ok"]]
    times = [0.0, *sorted(s["t"] for s in confirmed if s["t"] >= 0)]
    stall = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
    return {
        "confirmed": len(confirmed),
        "lost": len({s["seq"] for s in confirmed} - received),
        "stall_s": round(stall, 3),
    }


def _collect(proc: subprocess.Popen[str], fault_at: float, timeout: float) -> list[dict[str, Any]]:
    out, _err = proc.communicate(timeout=timeout)
    return [{**s, "t": round(s["t"] - fault_at, 3)} for s in probe_rows(out)]


def run_vip(lab: LabPlan, progress: Callable[[str], None]) -> dict[str, Any]:
    vip = lablink.vip(lab)
    (holder,) = next(iter(loadbalancer.vip_holders(lab).values()))
    progress(f"vip: Keystone through {vip} every 50 ms; cutting the VIP holder {holder}")
    probe = lablink.keystone_probe(lab, lab.deployment.hosts_of("nova-compute")[0], 10, 0.05)
    time.sleep(3)
    at = lablink.inject(lab, ("cut", holder))
    samples = _collect(probe, at, 60)
    lablink.heal(lab)
    return {"scenario": "vip", "target": holder, "figures": figures_vip(samples), "samples": samples}


def run_db(lab: LabPlan, progress: Callable[[str], None]) -> dict[str, Any]:
    password = lab.deployment.inventory.secrets.db_password
    vip = lablink.vip(lab)
    writer = lab.deployment.hosts_of("database")[0]  # HAProxy sends every write to the first Galera node
    run_id = f"bench-{time.time_ns()}"
    progress(f"db: INSERT through {vip} every 50 ms; killing the writer {writer}")
    probe = lablink.start_probe(
        lab.host(lab.deployment.hosts_of("keystone")[0]).netns,
        "sql",
        "--host",
        vip,
        "--run",
        run_id,
        "--seconds",
        "12",
        "--interval",
        "0.05",
        password=password,
    )
    time.sleep(3)
    at = lablink.inject(lab, ("kill", f"database:{writer}"))
    samples = _collect(probe, at, 60)
    lablink.heal(lab)
    stored = {}
    for host in lab.deployment.hosts_of("database"):
        rows = galera.sql(lab, host, f"SELECT seq FROM hastack.probe_writes WHERE run = '{run_id}'")
        stored[host] = {int(x) for x in rows.split()}
    return {
        "scenario": "db",
        "target": writer,
        "figures": figures_db(samples, stored, 0.05),
        "samples": samples,
    }


def run_mq(lab: LabPlan, progress: Callable[[str], None]) -> dict[str, Any]:
    password = lab.deployment.inventory.secrets.rabbitmq_password
    queue = f"bench-{time.time_ns()}"
    hosts = lab.deployment.hosts_of("rabbitmq")
    addresses = ",".join(str(lab.host(h).address) for h in hosts)
    client = lab.deployment.hosts_of("keystone")[-1]
    probe = lablink.start_probe(
        lab.host(client).netns,
        "amqp",
        "--hosts",
        addresses,
        "--queue",
        queue,
        "--count",
        "400",
        "--seconds",
        "20",
        "--interval",
        "0.02",
        password=password,
    )
    time.sleep(3)
    leader = rabbitmq.queue_leader(lab, hosts[0], queue)
    progress(f"mq: confirmed publishing to quorum queue {queue}; killing its leader's node {leader}")
    at = lablink.inject(lab, ("kill", f"rabbitmq:{leader}"))
    samples = _collect(probe, at, 60)
    survivors = ",".join(str(lab.host(h).address) for h in hosts if h != leader)
    drained = _collect(
        lablink.start_probe(
            lab.host(client).netns,
            "drain",
            "--hosts",
            survivors,
            "--queue",
            queue,
            "--seconds",
            "30",
            password=password,
        ),
        at,
        90,
    )
    lablink.heal(lab)
    received = set(drained[-1]["received"]) if drained else set()
    return {"scenario": "mq", "target": leader, "figures": figures_mq(samples, received), "samples": samples}


RUNNERS: dict[str, Callable[[LabPlan, Callable[[str], None]], dict[str, Any]]] = {
    "vip": run_vip,
    "db": run_db,
    "mq": run_mq,
}


GOALS = {"vip": "gap <= 0.5 s", "db": "0 lost, error window <= 2 s", "mq": "0 lost"}


def run(
    lab: LabPlan, scenario: str, repeat: int, out: Path, progress: Callable[[str], None]
) -> dict[str, Any]:
    """`repeat` trials of `scenario`; writes OUT/<scenario>.json and OUT/<scenario>.png."""
    started = time.time()
    trials = []
    for i in range(repeat):
        trials.append(RUNNERS[scenario](lab, progress))
        progress(f"  trial {i + 1}: {trials[-1]['figures']}")
    result = {
        "experiment": scenario,
        "goal": GOALS[scenario],
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "started": started,
        "seconds": round(time.time() - started, 1),
        "trials": trials,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{scenario}.json").write_text(json.dumps(result, indent=2))
    plot(scenario, trials, out / f"{scenario}.png")
    return result


def plot(scenario: str, trials: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3))
    samples = trials[0]["samples"]
    ok = [s for s in samples if s["ok"]]
    bad = [s for s in samples if not s["ok"]]
    ax.plot([s["t"] for s in ok], [max(s["ms"], 0.1) for s in ok], ".", markersize=3, label="acknowledged")
    if bad:
        ax.plot(
            [s["t"] for s in bad], [max(s["ms"] or 0.1, 0.1) for s in bad], "x", color="red", label="failed"
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("seconds after the fault")
    ax.set_ylabel("operation time (ms)")
    ax.set_title(f"{scenario}: fault on {trials[0]['target']} at 0 s; {trials[0]['figures']}", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
