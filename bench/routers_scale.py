"""Benchmark: N routers on 2 network nodes in the lab: time to build them, time to move them all from one
node to the other, and memory. Writes results/routers-<N>.json and results/routers-<N>.png.

    sudo .venv/bin/python bench/routers_scale.py --routers 1000

Needs root and no lab up. Every figure in the JSON comes from the samples it also stores.
"""

from __future__ import annotations

import argparse
import json
import platform
import threading
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from hastack.lab import l3agent, realise
from hastack.lab.plan import plan
from hastack.lab.state import LabState, locked
from hastack.model import load_deployment

INVENTORY = """\
deployment: scale
networks: {{management: 10.240.0.0/24}}
hosts:
  - {{name: db1, address: 10.240.0.11, roles: [persistence]}}
  - {{name: net1, address: 10.240.0.31, roles: [network]}}
  - {{name: net2, address: 10.240.0.32, roles: [network]}}
components: {{etcd: , l3-agent: }}
lab: {{external_cidr: 10.244.0.0/20, tenant_cidr: 10.245.0.0/16, tenant_prefix: 26,
       tenant_networks: {n}, routers: {n}, vms: 0}}
"""


def ready(host: str) -> int:
    try:
        records = json.loads(l3agent.record_file(host).read_text())
    except (OSError, ValueError):
        return 0
    return sum(1 for status in records.values() if status == "ready")


def meminfo_available_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


class Sampler(threading.Thread):
    """Every 0.2 s: how many routers each network node has ready."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[dict[str, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.samples.append({"t": time.time(), "net1": ready("net1"), "net2": ready("net2")})


def wait_until(what: str, done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routers", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    n = a.routers
    a.out.mkdir(parents=True, exist_ok=True)
    inventory = (a.out / f"routers-{n}.yaml").resolve()
    inventory.write_text(INVENTORY.format(n=n))
    p = plan(load_deployment(inventory))
    avail_before = meminfo_available_kb()
    sampler = Sampler()
    sampler.start()
    try:
        t_up = time.time()
        with locked():
            realise.up(p, LabState.load(), str(inventory), lambda step: print(f"[up] {step}", flush=True))
        wait_until("every router to be built", lambda: ready("net1") + ready("net2") == n, a.timeout)
        t_built = time.time()
        with locked():
            state = LabState.load()
            pss = realise.memory_bytes(p, state)
        avail_built = meminfo_available_kb()
        before = ready("net1")
        t_move = time.time()
        realise.netservice(p, LabState.load(), "move-all", "net1", "net2")
        t_rebound = time.time()
        wait_until("every router to move", lambda: ready("net2") == n and ready("net1") == 0, a.timeout)
        t_moved = time.time()
    finally:
        sampler.stop.set()
        with locked():
            realise.down(LabState.load(), lambda step: None)
    result = {
        "benchmark": "routers_scale",
        "routers": n,
        "machine": {
            "cpus": len(__import__("os").sched_getaffinity(0)),
            "kernel": platform.release(),
            "python": platform.python_version(),
        },
        "lab_up_s": round(t_built - t_up, 2),
        "moved_routers": before,
        "move_rebind_s": round(t_rebound - t_move, 2),
        "move_all_s": round(t_moved - t_move, 2),
        "memory": {
            "lab_processes_pss_mb": round(pss / 2**20),
            "system_used_mb": round((avail_before - avail_built) / 1024),
        },
        "instants": {"up": t_up, "built": t_built, "move": t_move, "rebound": t_rebound, "moved": t_moved},
        "samples": sampler.samples,
    }
    (a.out / f"routers-{n}.json").write_text(json.dumps(result, indent=1))
    plot(result, a.out / f"routers-{n}.png")
    print(json.dumps({k: v for k, v in result.items() if k not in ("samples", "instants")}, indent=1))


def plot(result: dict[str, Any], target: Path) -> None:
    t0 = result["instants"]["up"]
    ts = [s["t"] - t0 for s in result["samples"]]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(ts, [s["net1"] for s in result["samples"]], label="routers ready on net1")
    ax.plot(ts, [s["net2"] for s in result["samples"]], label="routers ready on net2")
    for name, label in (("built", "all built"), ("move", "move all net1 -> net2"), ("moved", "all moved")):
        ax.axvline(result["instants"][name] - t0, linestyle="--", color="grey")
        ax.annotate(
            label,
            (result["instants"][name] - t0, result["routers"] * 0.95),
            rotation=90,
            fontsize=8,
            ha="right",
            va="top",
        )
    ax.set_xlabel("seconds since `lab up`")
    ax.set_ylabel("routers ready")
    ax.set_title(
        f"{result['routers']} routers on 2 network nodes: built in {result['lab_up_s']} s, "
        f"moved in {result['move_all_s']} s"
    )
    ax.legend(loc="center right")
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main()
