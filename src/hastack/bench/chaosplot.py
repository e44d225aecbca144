"""The fault campaign's timeline (chaos.png): every fault as a bar on the hosts it touched, each VM's
reachability as a heat strip below, and every breach of an invariant as a red line."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = float(result["started"])
    rows = [r for r in result["done"] if r["injected_at"] is not None]
    hosts = sorted({h for x in result["schedule"] for h in x["hosts"]})
    hosts_of = {x["index"]: x["hosts"] for x in result["schedule"]}
    fig, (faults_ax, vms_ax) = plt.subplots(
        2, 1, figsize=(14, 7), sharex=True, gridspec_kw={"height_ratios": [len(hosts) or 1, 4]}
    )
    for r in rows:
        start, end = r["injected_at"] - t0, r["healed_at"] - t0
        colour = "tab:blue" if r["tolerated"] else "tab:orange"
        for h in hosts_of.get(r["index"], []):
            faults_ax.barh(hosts.index(h), end - start, left=start, color=colour, alpha=0.7, height=0.8)
    faults_ax.set_yticks(range(len(hosts)), hosts, fontsize=7)
    faults_ax.set_title(
        f"{result['faults']} faults, seed {result['seed']}: blue tolerated by the analysis, orange beyond"
    )
    rounds = result["rounds"]
    if rounds:
        import numpy as np

        grid = np.ones((len(result["vms"]), len(rounds)))
        for j, rnd in enumerate(rounds):
            for i in rnd["missing"]:
                grid[i, j] = 0.0
        times = [float(rnd["t"]) - t0 for rnd in rounds]
        vms_ax.imshow(
            grid, aspect="auto", cmap="RdYlGn", vmin=0, vmax=1, interpolation="nearest",
            extent=(times[0], times[-1], len(result["vms"]), 0),
        )  # fmt: skip
    vms_ax.set_ylabel("VM (green: answered)")
    vms_ax.set_xlabel("seconds since the campaign's first fault could start")
    for b in result["invariants"]["breaches"]:
        if b["index"] is not None:
            done = next(r for r in rows if r["index"] == b["index"])
            for ax in (faults_ax, vms_ax):
                ax.axvline(done["injected_at"] - t0, color="red", linewidth=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
