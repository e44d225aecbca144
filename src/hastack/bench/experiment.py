"""The failover experiment: every policy x scenario on one lab, repeated, written as JSON and a figure.

The figure follows the paper's Figure 4b (pongs over time around the failure), one row per scenario and one
colour per policy, beside a bar chart of the gaps (median, with every trial's value) and the goals.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hastack.bench.failover import Trial, policy_in_force, run_trial
from hastack.lab.hadaemons import ctl
from hastack.lab.plan import LabPlan

# Goals for hastack; leader-kill: the l3-kill goal plus the 2 s a standby may take to lead. A fault of
# the control plane alone (etcd) must not show on the data plane: 0.3 s, and nothing moves.
GOALS_S = {
    "l3-kill": 0.2,
    "node-cut": 0.5,
    "node-freeze": 0.5,
    "leader-kill": 1.0,
    "agent-freeze": 1.5,
    "etcd-partition": 1.5,
    "etcd-quorum": 0.3,
    "etcd-leader-freeze": 0.3,
}
AFTER_HEAL_GOAL_S = 0.3
COLOURS = {"hastack": "tab:green", "paper": "tab:orange", "neutron": "tab:red"}


def summarise(trials: Sequence[Trial]) -> list[dict[str, Any]]:
    """Per policy and scenario: the gaps, their median and worst, and the worst dual-active time. Pure."""
    rows = []
    for key in sorted({(t.policy, t.scenario) for t in trials}):
        mine = [t for t in trials if (t.policy, t.scenario) == key]
        gaps = [t.gap_s for t in mine if t.gap_s is not None]
        after = [t.gap_after_heal_s for t in mine]
        rows.append(
            {
                "policy": key[0],
                "scenario": key[1],
                "trials": len(mine),
                "never_back": sum(t.gap_s is None for t in mine),
                "gaps_s": [t.gap_s for t in mine],
                "median_gap_s": round(statistics.median(gaps), 3) if gaps else None,
                "worst_gap_s": max(gaps) if gaps else None,
                "goal_s": GOALS_S.get(key[1]) if key[0] == "hastack" else None,
                "worst_dual_active_s": max(t.dual_active_s for t in mine),
                "worst_dual_forwarding_s": max(t.dual_forwarding_s for t in mine),
                "worst_gap_after_heal_s": None if None in after else max(a for a in after if a is not None),
                "most_moved": max(t.moved for t in mine),
            }
        )
    return rows


def run(
    lab: LabPlan,
    inventory: str,
    policies: Sequence[str],
    scenarios: Sequence[str],
    repeats: dict[str, int],
    out_dir: Path,
    progress: Callable[[str], None],
    name: str = "l3",
) -> dict[str, Any]:
    """Every policy x scenario, repeated; writes OUT/<name>.json and OUT/<name>.png. A run cut short
    leaves the trials it did in OUT/<name>.partial.json (the anchors' trials take minutes each)."""
    trials: list[Trial] = []
    started = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for policy in policies:
            with policy_in_force(lab, policy, progress):
                for scenario in scenarios:
                    for i in range(repeats.get(policy, 1)):
                        t = run_trial(lab, inventory, scenario, policy, progress)
                        trials.append(t)
                        gap = "never back" if t.gap_s is None else f"gap {t.gap_s:.2f} s"
                        healed = t.gap_after_heal_s
                        later = "never back" if healed is None else f"{healed:.2f} s"
                        progress(
                            f"  trial {i + 1}: {gap}, after the heal {later}, dual-active "
                            f"{t.dual_active_s:.2f} s, {t.moved} routers moved, on {t.forwarders}"
                        )
    except BaseException:
        if trials:
            partial = out_dir / f"{name}.partial.json"
            partial.write_text(json.dumps(_result(lab, started, trials), indent=2))
            progress(f"stopped: the {len(trials)} trials done are in {partial}")
        raise
    finally:
        ctl(lab, "policy", "hastack")  # leave the lab as it was found
    result = _result(lab, started, trials)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
    plot(trials, out_dir / f"{name}.png")
    return result


def _result(lab: LabPlan, started: float, trials: Sequence[Trial]) -> dict[str, Any]:
    return {
        "experiment": "network-node failover, 100 ms pings to a VM's floating IP (the paper's Fig. 4b)",
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "deployment": lab.deployment.name,
        "started": started,
        "seconds": round(time.time() - started, 1),
        "summary": summarise(trials),
        "trials": [t.as_dict() for t in trials],
    }


def plot(trials: Sequence[Trial], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = sorted({t.scenario for t in trials})
    fig, axes = plt.subplots(len(scenarios), 2, figsize=(13, 2.8 * len(scenarios)), squeeze=False)
    for row, scenario in enumerate(scenarios):
        timeline, bars = axes[row]
        mine = [t for t in trials if t.scenario == scenario]
        policies = sorted({t.policy for t in mine})
        for lane, policy in enumerate(policies):
            first = next(t for t in mine if t.policy == policy)
            xs = [s["t"] for s in first.after_fault]
            ys = [lane + (0.3 if s["ok"] else -0.3) for s in first.after_fault]
            timeline.scatter(xs, ys, s=4, color=COLOURS.get(policy, "grey"), label=policy)
        timeline.axvline(0, color="black", linewidth=0.8)
        timeline.set_yticks(range(len(policies)), policies)
        timeline.set_xlabel("seconds after the fault (pong above the lane, lost ping below)")
        timeline.set_title(f"{scenario}: pongs from one VM, first trial per policy", fontsize=9)
        for i, policy in enumerate(policies):
            gaps = [t.gap_s for t in mine if t.policy == policy and t.gap_s is not None]
            if gaps:
                bars.bar(i - 0.2, statistics.median(gaps), width=0.4, color=COLOURS.get(policy, "grey"))
                bars.scatter([i - 0.2] * len(gaps), gaps, color="black", s=8, zorder=3)
            dual = max(t.dual_active_s for t in mine if t.policy == policy)
            bars.bar(i + 0.2, dual, width=0.4, color="none", edgecolor="tab:red", hatch="//")
            bars.text(i + 0.2, max(dual, 0.05), f"{dual:g} s", ha="center", va="bottom", fontsize=7)
        if scenario in GOALS_S:
            bars.axhline(
                GOALS_S[scenario], color="tab:green", linestyle="--", linewidth=0.8, label="hastack goal"
            )
        bars.set_xticks(range(len(policies)), policies)
        bars.set_yscale("symlog", linthresh=1)
        bars.set_ylabel("seconds")
        bars.set_title(
            f"{scenario}: gap (median, every trial a dot) | hatched: worst dual-active time", fontsize=9
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
