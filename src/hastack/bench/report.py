"""results/REPORT.md from the experiments' JSON: one table per experiment, hastack beside the anchors.

The ping gaps and the API figures are recomputed from the samples stored in the JSON (not copied from its
summary), so the report cannot say what the samples do not; dual-active time is the gate sampler's
verdict, recorded per trial (its 10 ms samples are not stored).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hastack.bench import api, experiment, scale, stateful
from hastack.bench.failover import Trial, gaps


def _fmt(value: Any, unit: str = "") -> str:
    return "—" if value is None else f"{value}{unit}"


def _goal(goal_s: float | None) -> str:
    after = experiment.AFTER_HEAL_GOAL_S
    return "—" if goal_s is None else f"<= {goal_s} s, <= {after} s after the heal, 0 s dual-active"


def l3_table(data: dict[str, Any]) -> list[str]:
    trials = [Trial(**t) for t in data["trials"]]
    for t in trials:  # the gaps again, from the pings each trial kept (times relative to the fault)
        if t.after_fault:
            t.gap_s, t.lost, t.gap_after_heal_s = gaps(t.after_fault, 0.0, t.healed_at_s)
    rows = experiment.summarise(trials)
    out = [
        "| policy | scenario | trials | median gap | worst gap | never back | worst gap after the heal | "
        "routers moved (most) | worst dual-active (could / did forward) | goal |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        out.append(
            f"| {r['policy']} | {r['scenario']} | {r['trials']} | {_fmt(r['median_gap_s'], ' s')} | "
            f"{_fmt(r['worst_gap_s'], ' s')} | {r['never_back']} | "
            f"{_fmt(r['worst_gap_after_heal_s'], ' s')} | {r['most_moved']} | "
            f"{r['worst_dual_active_s']} s / {r['worst_dual_forwarding_s']} s | {_goal(r['goal_s'])} |"
        )
    return out


def api_table(data: dict[str, Any]) -> list[str]:
    trials = [api.summarise(t["fault"], t["host"], t["samples"], t.get("checks", [])) for t in data["trials"]]
    out = [
        "| fault | trials | failed requests | p99 before | max after fault | steady after (median, worst) "
        "| down on every HAProxy (worst) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in api.summary(trials):
        out.append(
            f"| {r['fault']} | {r['trials']} | {r['failed_total']} | {r['p99_before_ms']} ms | "
            f"{r['max_after_ms']} ms | {r['median_steady_after_s']} s / {r['worst_steady_after_s']} s | "
            f"{_fmt(r['worst_detected_s'], ' s')} |"
        )
    out += ["", "Goals: 0 failed requests, max after <= 2 x p99 + 100 ms; a frozen replica down <= 1 s."]
    return out


def stateful_table(data: dict[str, Any]) -> list[str]:
    """One row per trial: the figures its samples gave (recomputed where they are pure functions)."""
    out = [f"Goal: {data.get('goal', '?')}.", "", "| trial | target | figures |", "| --- | --- | --- |"]
    for i, t in enumerate(data["trials"], 1):
        figures = t["figures"]
        if data["experiment"] == "vip":
            figures = stateful.figures_vip(t["samples"])
        shown = ", ".join(f"{k} {v}" for k, v in figures.items() if k != "missing_by_host")
        out.append(f"| {i} | {t['target']} | {shown} |")
    return out


def scale_table(data: dict[str, Any]) -> list[str]:
    trials = [scale.ScaleTrial(**t) for t in data["trials"]]
    for t in trials:  # again, from the rounds each trial kept
        f = scale.figures(t.rounds, len(t.targets))
        t.all_back_s, t.median_back_s, t.lost, t.never_back = (
            f["all_back_s"],
            f["median_back_s"],
            f["lost"],
            f["never_back"],
        )
    out = [
        "| routers | scenario | trials | every router back (median) | worst | controller's last move "
        "(median) | never back | goal |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in scale.summarise(trials):
        out.append(
            f"| {r['routers']} | {r['scenario']} | {r['trials']} | {_fmt(r['median_all_back_s'], ' s')} | "
            f"{_fmt(r['worst_all_back_s'], ' s')} | {_fmt(r['median_last_move_s'], ' s')} | "
            f"{r['never_back']} | {_fmt(r['goal_s'], ' s')} |"
        )
    return out


def chaos_table(data: dict[str, Any]) -> list[str]:
    inv = data["invariants"]
    out = [
        f"{data['faults']} faults, seed {data['seed']} (`bench chaos --replay chaos.json` reruns it); "
        f"{len(inv['beyond_tolerance'])} beyond what the analysis tolerates, {inv['skipped']} skipped.",
        "",
        f"- dual-active (could / did forward on two nodes): {inv['dual_active_s']} s / "
        f"{inv['dual_forwarding_s']} s",
        f"- lost commits: {inv['lost_commits']}; lost messages: {inv['lost_messages']}; "
        f"VMs never back: {len(inv['unrecovered'])}",
        f"- breaches: {len(inv['breaches'])}"
        + "".join(f"\n  - #{b['index']} {b['fault']}: {b['breach']}" for b in inv["breaches"]),
        "",
        "| fault kind (tolerated) | faults | gap median | gap worst | Keystone failing, worst |",
        "| --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| {k} | {v['faults']} | {v['median_s']} s | {v['worst_s']} s | {v.get('keystone_worst_s', '-')} s |"
        for k, v in inv["gap_s"].items()
    ]
    return out


def _date(data: dict[str, Any], path: Path) -> str:
    """When the experiment started (UTC): its `started`, else the file's modification time."""
    started = data.get("started")
    when = float(started) if isinstance(started, int | float) else path.stat().st_mtime
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")


def write(results: Path) -> Path:
    """Write results/REPORT.md from whatever experiments' JSON is there; its path."""
    parts = ["# hastack failover report", ""]
    found = False
    for name, title, table in (
        (
            "l3.json",
            "Network-node failover: 100 ms pings to a VM's floating IP (the paper's Fig. 4b)",
            l3_table,
        ),
        ("api.json", "Keystone through the VIP while a replica fails (the paper's Fig. 4a)", api_table),
        ("controller.json", "The leader controller killed with an L3 agent (goal: 2 s extra)", l3_table),
        (
            "fencing.json",
            "Fencing through trouble: etcd's quorum lost, a node cut off from etcd, etcd's leader frozen, a "
            "node agent frozen (each healed inside the trial)",
            l3_table,
        ),
        ("vip.json", "The VIP holder cut while Keystone is used through the VIP", stateful_table),
        ("db.json", "The Galera writer killed during a write loop through the VIP", stateful_table),
        ("mq.json", "The node of a quorum queue's leader killed during confirmed publishing", stateful_table),
        (
            "chaos.json",
            "Fault campaign: random overlapping faults with invariants on the data plane",
            chaos_table,
        ),
        (
            "scale.json",
            "A network node hosting N routers fails: until every router answers again",
            scale_table,
        ),
    ):
        path = results / name
        if not path.exists():
            continue
        found = True
        data = json.loads(path.read_text())
        machine = data.get("machine", {})
        parts += [
            f"## {title}",
            "",
            f"From `{name}`, run {_date(data, path)} ({machine.get('platform', '?')}, Python "
            f"{machine.get('python', '?')}; {data.get('seconds', data.get('duration_s', '?'))} s). "
            f"Plot: `{name[:-5]}.png`.",
            "",
        ]
        parts += [*table(data), ""]
    if not found:
        raise FileNotFoundError(f"no experiment results in {results} (run `hastack bench l3` or `api` first)")
    report = results / "REPORT.md"
    report.write_text("\n".join(parts))
    return report
