"""The fault campaign's invariants, from what its workloads recorded. Pure.

Times are wall-clock seconds. A VM's outage is a run of sweep rounds it did not answer, from the first
such round's start to the start of the next round it answered. An outage belongs to every fault that was
active (injected, not yet healed plus `AFTER_HEAL_S`) when it began; a fault's gap is the longest outage
that belongs to it, and its gap after the heal the longest that began after its heal.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hastack.bench.experiment import AFTER_HEAL_GOAL_S

AFTER_HEAL_S = 4.0  # a fault is watched this long after its heal: an outage then is still its doing


@dataclass(frozen=True)
class Done:
    """A planned action as it happened: when it was injected and healed (None: it could not be injected,
    `skipped` says why)."""

    index: int
    label: str
    kind: str
    tolerated: bool
    goal_s: float | None  # None: not judged (packet loss makes any VM on the host miss rounds)
    injected_at: float | None
    healed_at: float | None
    skipped: str = ""


def outages(rounds: Sequence[Mapping[str, Any]], count: int) -> list[tuple[int, float, float]]:
    """(vm index, start, end) of every outage in the sweep's rounds ({"t", "missing": [indices]}); an
    outage still going at the last round ends there."""
    found: list[tuple[int, float, float]] = []
    since: dict[int, float] = {}
    for r in rounds:
        missing = set(r["missing"])
        for vm in range(count):
            if vm in missing:
                since.setdefault(vm, float(r["t"]))
            elif vm in since:
                found.append((vm, since.pop(vm), float(r["t"])))
    end = float(rounds[-1]["t"]) if rounds else 0.0
    found += [(vm, start, end) for vm, start in since.items()]
    return sorted(found, key=lambda o: o[1])


def failed_runs(samples: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """(start, end) of every run of failed requests ({"t", "ok"}, in time order): from the first failure's
    start to the start of the next request that succeeded (or the last one's, if none did)."""
    runs: list[tuple[float, float]] = []
    since: float | None = None
    for s in samples:
        if not s.get("ok") and since is None:
            since = float(s["t"])
        elif s.get("ok") and since is not None:
            runs.append((since, float(s["t"])))
            since = None
    if since is not None:
        runs.append((since, float(samples[-1]["t"])))
    return runs


def keystone_figures(
    done: Done, runs: Sequence[tuple[float, float]], dones: Sequence[Done]
) -> dict[str, Any]:
    """Keystone through the VIP while a fault held: the longest run of failed reads blamed on it, and how
    long Keystone still failed after the last heal of every fault held during that run (0: serving again
    by then; 0 too when one of those went beyond what the analysis tolerates). A run that outlasts this
    fault but not a fault held beside it (a Galera node split off while a node agent is killed) is that
    other fault's doing."""
    if done.injected_at is None or done.healed_at is None:
        return {"keystone_gap_s": 0.0, "keystone_after_heal_s": 0.0}
    mine = [(s, e) for s, e in runs if done in owners(dones, s)]
    late = 0.0
    for s, e in mine:
        during = [d for d in dones if d.injected_at is not None and d.injected_at < e and _healed_after(d, s)]
        if all(d.tolerated for d in during):
            last_heal = max((d.healed_at or e) for d in during) if during else e
            late = max(late, e - last_heal)
    return {
        "keystone_gap_s": round(max((e - s for s, e in mine), default=0.0), 3),
        "keystone_after_heal_s": round(max(0.0, late), 3),
    }


def _healed_after(d: Done, t: float) -> bool:
    return d.healed_at is None or d.healed_at >= t


def unrecovered(rounds: Sequence[Mapping[str, Any]], last_s: float = 5.0) -> list[int]:
    """The VMs that did not answer one round in the campaign's last `last_s` seconds."""
    if not rounds:
        return []
    tail = [set(r["missing"]) for r in rounds if float(r["t"]) >= float(rounds[-1]["t"]) - last_s]
    return sorted(set.intersection(*tail))


def _is_held(d: Done, t: float) -> bool:
    return d.injected_at is not None and d.healed_at is not None and d.injected_at <= t < d.healed_at


def _is_settling(d: Done, t: float) -> bool:
    return d.healed_at is not None and d.healed_at <= t <= d.healed_at + AFTER_HEAL_S


def _goal(d: Done) -> float:
    return float("inf") if d.goal_s is None else d.goal_s


def owners(dones: Sequence[Done], t: float) -> list[Done]:
    """The faults an outage that began at `t` is blamed on: of those held then, the ones with the longest
    goal (an unjudged one counts as longest); if none is held, the same of those healed in the last
    `AFTER_HEAL_S`. With two faults held, a cut network node's failover is the cut's doing, not that of
    the Keystone replica frozen meanwhile; one that begins while a fault is held is not the heal's."""
    group = [d for d in dones if _is_held(d, t)] or [d for d in dones if _is_settling(d, t)]
    longest = max((_goal(d) for d in group), default=0.0)
    return [d for d in group if _goal(d) == longest]


def allowed_s(dones: Sequence[Done], t: float) -> float | None:
    """How long an outage that began at `t` may last: the longest goal of the faults held then, or
    `AFTER_HEAL_GOAL_S` if none is (the outage comes after a heal: it may not be a second failover); None:
    not judged (a fault held or settling then is beyond tolerance, or unjudged). A fault only settling
    gives no allowance of its own: its failover began while it was held."""
    held = [d for d in dones if _is_held(d, t)]
    near = held + [d for d in dones if _is_settling(d, t)]
    if any(not d.tolerated or d.goal_s is None for d in near):
        return None
    return max(_goal(d) for d in held) if held else AFTER_HEAL_GOAL_S


def fault_gaps(
    done: Done, found: Sequence[tuple[int, float, float]], dones: Sequence[Done] = ()
) -> tuple[float, float]:
    """(gap, gap after the heal) of one fault: the longest outage blamed on it (`owners`, among `dones`),
    and the longest of those that began after its heal."""
    if done.injected_at is None or done.healed_at is None:
        return 0.0, 0.0
    others = dones or [done]
    mine = [(s, e) for _vm, s, e in found if done in owners(others, s)]
    after = [e - s for s, e in mine if s >= done.healed_at]
    return round(max((e - s for s, e in mine), default=0.0), 3), round(max(after, default=0.0), 3)


def outage_breaches(dones: Sequence[Done], found: Sequence[tuple[int, float, float]]) -> list[dict[str, Any]]:
    """Every outage longer than allowed, one entry per fault blamed and start (many VMs share one)."""
    grouped: dict[tuple[int | None, float, float], list[tuple[int, float]]] = {}
    for vm, s, e in found:
        limit = allowed_s(dones, s)
        if limit is not None and e - s > limit:
            blamed = owners(dones, s)
            key = (blamed[0].index if blamed else None, round(s, 1), limit)
            grouped.setdefault(key, []).append((vm, e - s))
    labels = {d.index: d.label for d in dones}
    out = []
    for (index, start, limit), vms in sorted(grouped.items(), key=lambda g: g[0][1]):
        worst = max(gap for _vm, gap in vms)
        out.append(
            {
                "index": index,
                "fault": labels[index] if index is not None else "no fault",
                "breach": f"{len(vms)} VM(s) dark {worst:.3f} s from t={start}, allowed {limit:.1f} s",
            }
        )
    return out


def per_kind(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per fault kind, over the tolerated faults that ran: how many, and the gap's median and worst."""
    kinds: dict[str, list[float]] = {}
    for row in rows:
        if row["tolerated"] and not row["skipped"]:
            kinds.setdefault(row["kind"], []).append(row["gap_s"])
    keystone: dict[str, float] = {}
    for row in rows:
        if row["tolerated"] and not row["skipped"]:
            keystone[row["kind"]] = max(keystone.get(row["kind"], 0.0), row.get("keystone_gap_s", 0.0))
    return {
        kind: {
            "faults": len(gaps),
            "median_s": round(statistics.median(gaps), 3),
            "worst_s": max(gaps),
            "keystone_worst_s": keystone[kind],
        }
        for kind, gaps in sorted(kinds.items())
    }


def invariants(
    dones: Sequence[Done],
    rounds: Sequence[Mapping[str, Any]],
    vm_count: int,
    dual: Mapping[str, Mapping[str, float]],
    lost_commits: int,
    lost_messages: int,
    keystone: Sequence[Mapping[str, Any]] = (),
    after: Sequence[str] = (),
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The campaign's verdict (key `invariants` of chaos.json) and one row per fault with its figures.
    `dual`: {"could": router -> s, "did": router -> s} from the gate sampler; `keystone`: the Keystone
    reads through the VIP ({"t", "ok"}). A tolerated fault after which Keystone still failed
    `AFTER_HEAL_S` past the heal is a breach: it must serve again. `after`: what was wrong with the lab
    once the campaign was over (a failed `lab verify`, a leak), each a breach."""
    found, runs = outages(rounds, vm_count), failed_runs(keystone)
    rows, breaches = [], []
    for d in dones:
        gap, late = fault_gaps(d, found, dones)
        rows.append(
            {**d.__dict__, "gap_s": gap, "gap_after_heal_s": late, **keystone_figures(d, runs, dones)}
        )
    breaches += outage_breaches(dones, found)
    breaches += [
        {
            "index": r["index"],
            "fault": r["label"],
            "breach": f"Keystone still failing {r['keystone_after_heal_s']:.1f} s after the heal",
        }
        for r in rows
        if r["tolerated"] and r["keystone_after_heal_s"] > AFTER_HEAL_S
    ]
    could, did = dual.get("could", {}), dual.get("did", {})
    for router, seconds in sorted(could.items()):
        if seconds > 0:
            breaches.append(
                {"index": None, "fault": router, "breach": f"open on two nodes for {seconds:.3f} s"}
            )
    lost = unrecovered(rounds)
    if lost_commits or lost_messages or lost:
        breaches.append(
            {
                "index": None,
                "fault": "data",
                "breach": f"lost {lost_commits} commits, {lost_messages} messages; VMs never back: {lost}",
            }
        )
    breaches += [{"index": None, "fault": "after the campaign", "breach": line} for line in after]
    verdict = {
        "dual_active_s": round(max(could.values(), default=0.0), 3),
        "dual_forwarding_s": round(max(did.values(), default=0.0), 3),
        "lost_commits": lost_commits,
        "lost_messages": lost_messages,
        "unrecovered": lost,
        "gap_s": per_kind(rows),
        "beyond_tolerance": [
            {
                "index": r["index"],
                "fault": r["label"],
                "gap_s": r["gap_s"],
                "gap_after_heal_s": r["gap_after_heal_s"],
            }
            for r in rows
            if not r["tolerated"] and not r["skipped"]
        ],
        "skipped": sum(1 for d in dones if d.skipped),
        "after_campaign": list(after),
        "breaches": breaches,
    }
    return verdict, rows
