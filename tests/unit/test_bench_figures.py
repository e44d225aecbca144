"""The experiments' figures come from their samples: recomputed here from plain samples."""

from __future__ import annotations

import json
from pathlib import Path

from hastack.bench import api, experiment, failover, report
from hastack.bench.failover import Trial, gap_s


def pings(pattern: str, start: float = -1.0) -> list[dict[str, object]]:
    """'.' an answered ping, 'x' a lost one, every 100 ms from `start` seconds."""
    return [{"t": start + i * 0.1, "ok": c == ".", "seq": i} for i, c in enumerate(pattern)]


def test_the_gap_is_the_longest_run_of_lost_pings_after_the_fault() -> None:
    assert gap_s(pings("..........xxx..xxxxx....."), since=0.0, interval_s=0.1) == (0.5, 8)
    assert gap_s(pings("xx........"), since=0.0, interval_s=0.1) == (0.0, 0)  # lost before the fault
    assert gap_s(pings("..........xxxxx"), since=0.0, interval_s=0.1) == (None, 5)  # never back


def trial(policy: str, gap: float | None, dual: float = 0.0) -> Trial:
    return Trial(policy, "l3-kill", "net1", "vm0", "r0", gap, 3, 100, dual, {}, ["net2"])


def test_the_summary_takes_medians_and_worst_cases_over_the_trials() -> None:
    rows = experiment.summarise(
        [trial("hastack", 0.2), trial("hastack", 0.4), trial("hastack", 0.3, dual=0.05)]
    )
    assert rows == [
        {
            "policy": "hastack",
            "scenario": "l3-kill",
            "trials": 3,
            "never_back": 0,
            "gaps_s": [0.2, 0.4, 0.3],
            "median_gap_s": 0.3,
            "worst_gap_s": 0.4,
            "goal_s": 0.2,
            "worst_dual_active_s": 0.05,
            "worst_dual_forwarding_s": 0.0,
            "worst_gap_after_heal_s": 0.0,
            "most_moved": 0,
        }
    ]


def test_a_second_outage_after_the_heal_is_reported_apart() -> None:
    # Fault at 0 s: lost 0.3-0.6 s; healed at 3 s; lost again 4.0-5.2 s, back after.
    samples = pings("." * 13 + "xxx" + "." * 34 + "x" * 12 + "." * 10, start=-1.0)
    sampled = failover._trial("hastack", "etcd-partition", "net1", vm(), samples, [], 0.0, 3.0, 0)
    assert sampled.gap_s == 0.3
    assert sampled.gap_after_heal_s == 1.2
    assert sampled.healed_at_s == 3.0
    row = experiment.summarise([sampled])[0]
    assert row["worst_gap_after_heal_s"] == 1.2
    assert row["goal_s"] == 1.5


def vm() -> object:
    from hastack.lab.topology import network_plan
    from hastack.model import load_deployment
    from tests.conftest import EXAMPLES

    return network_plan(load_deployment(EXAMPLES / "paper.yaml")).vms[0]


def test_api_figures_from_samples() -> None:
    samples = [{"t": -2 + i * 0.05, "ok": True, "ms": 10.0} for i in range(40)]
    samples += [{"t": 0.0, "ok": False, "ms": 1000.0}, {"t": 0.05, "ok": True, "ms": 900.0}]
    samples += [{"t": 0.1 + i * 0.05, "ok": True, "ms": 11.0} for i in range(20)]
    t = api.summarise("replica-kill", "ctl1", samples)
    assert (t.requests, t.failed, t.p50_before_ms, t.p99_before_ms) == (62, 1, 10.0, 10.0)
    assert t.max_after_ms == 1000.0
    assert t.steady_after_s == 1.0  # when the failed request (sent at 0.0, 1000 ms) ended
    assert t.detected_s is None  # no load balancer's view recorded: not "detected at 0"


def test_detected_when_every_load_balancer_has_the_replica_down() -> None:
    checks = [
        {"t": -3.0, "lb": "db1", "status": "UP"},
        {"t": -3.0, "lb": "db2", "status": "UP"},
        {"t": 0.3, "lb": "db1", "status": "UP 1/2"},
        {"t": 0.45, "lb": "db1", "status": "DOWN"},
        {"t": 0.6, "lb": "db2", "status": "DOWN"},
        {"t": 6.5, "lb": "db1", "status": "UP"},
    ]
    assert api.detected(checks) == 0.6
    assert api.detected(checks[:-2]) is None  # db2 never saw it
    assert api.detected([{"t": -1.0, "lb": "db1", "status": "DOWN"}]) is None  # down before the fault
    samples = [{"t": -1.0, "ok": True, "ms": 10.0}, {"t": 0.1, "ok": True, "ms": 12.0}]
    assert api.summarise("replica-freeze", "ctl1", samples, checks).detected_s == 0.6


def test_the_report_is_written_from_the_stored_trials(tmp_path: Path) -> None:
    trials = [trial("hastack", 0.2), trial("neutron", None)]
    (tmp_path / "l3.json").write_text(
        json.dumps(
            {
                "trials": [t.as_dict() for t in trials],
                "summary": "ignored",
                "started": 1796054400.0 - 16 * 3600,
            }
        )
    )
    text = report.write(tmp_path).read_text()
    assert "From `l3.json`, run 2026-11-30 00:00 UTC (" in text  # every table is dated
    goal = "<= 0.2 s, <= 0.3 s after the heal, 0 s dual-active"
    assert f"| hastack | l3-kill | 1 | 0.2 s | 0.2 s | 0 | 0.0 s | 0 | 0.0 s / 0.0 s | {goal} |" in text
    assert "| neutron | l3-kill | 1 | — | — | 1 | 0.0 s | 0 | 0.0 s / 0.0 s | — |" in text


def test_stateful_figures_from_samples() -> None:
    from hastack.bench import stateful

    vip = [
        {"t": -0.1, "ok": True, "ms": 5.0},
        {"t": 0.0, "ok": False, "ms": 1000.0},
        {"t": 0.2, "ok": False, "ms": 1000.0},
        {"t": 0.35, "ok": True, "ms": 40.0},
    ]
    assert stateful.figures_vip(vip) == {"failed": 2, "gap_s": 0.35, "max_ms": 1000.0}
    writes = [
        {"t": -0.1, "ok": True, "seq": 1},
        {"t": 0.0, "ok": False, "seq": 2},
        {"t": 0.5, "ok": False, "seq": 3},
        {"t": 0.6, "ok": True, "seq": 4},
    ]
    db = stateful.figures_db(writes, {"db1": {1, 4}, "db2": {1}}, 0.05)
    assert (db["acknowledged"], db["lost"], db["missing_by_host"], db["error_window_s"]) == (
        2,
        1,
        {"db1": [], "db2": [4]},
        0.55,
    )
    confirms = [
        {"t": -0.5, "ok": True, "seq": 1},
        {"t": 0.1, "ok": True, "seq": 2},
        {"t": 1.6, "ok": True, "seq": 3},
        {"t": 0.3, "ok": False, "seq": 9},
    ]
    assert stateful.figures_mq(confirms, {1, 2}) == {"confirmed": 3, "lost": 1, "stall_s": 1.5}


def test_the_report_recomputes_gaps_from_the_pings_not_the_stored_figure(tmp_path: Path) -> None:
    t = trial("hastack", 9.9)  # a stored figure the samples contradict
    t.after_fault = [{"t": s["t"], "ok": s["ok"], "seq": s["seq"]} for s in pings("...xxx....", start=-0.3)]
    (tmp_path / "l3.json").write_text(json.dumps({"trials": [t.as_dict()]}))
    text = report.write(tmp_path).read_text()
    assert "| hastack | l3-kill | 1 | 0.3 s | 0.3 s | 0 |" in text


def test_the_report_splits_the_stored_pings_at_the_heal(tmp_path: Path) -> None:
    t = trial("hastack", 0.0)  # stored figures the samples contradict: 0 s, and nothing after the heal
    t.after_fault = [{"t": s["t"], "ok": s["ok"], "seq": s["seq"]} for s in pings("..xx......xxxx....", 0)]
    t.healed_at_s = 0.8
    (tmp_path / "l3.json").write_text(json.dumps({"trials": [t.as_dict()]}))
    text = report.write(tmp_path).read_text()
    assert "| hastack | l3-kill | 1 | 0.2 s | 0.2 s | 0 | 0.4 s |" in text


def test_the_gap_is_time_not_a_count_when_ping_slows_down() -> None:
    slow = [
        {"t": 0.0, "ok": True, "seq": 1},
        {"t": 0.1, "ok": False, "seq": 2},
        {"t": 0.3, "ok": False, "seq": 3},
        {"t": 0.7, "ok": False, "seq": 4},
        {"t": 1.5, "ok": False, "seq": 5},
        {"t": 2.0, "ok": True, "seq": 6},
    ]
    assert gap_s(slow, since=0.05, interval_s=0.1) == (1.9, 4)


def test_scale_figures_from_the_sweep_rounds() -> None:
    from hastack.bench import scale

    rounds = [
        {"t": -0.2, "missing": []},
        {"t": 0.0, "missing": [0, 1, 2]},
        {"t": 0.2, "missing": [0, 1]},  # 2 is back at 0.2
        {"t": 0.4, "missing": [1]},  # 0 is back at 0.4
        {"t": 0.6, "missing": []},  # 1 is back at 0.6 ...
        {"t": 0.8, "missing": [1]},  # ... and lost again: back only at 1.0
        {"t": 1.0, "missing": []},
    ]
    assert scale.figures(rounds, 4) == {"all_back_s": 1.0, "median_back_s": 0.4, "lost": 3, "never_back": 0}
    assert scale.figures([*rounds, {"t": 1.2, "missing": [3]}], 4) == {
        "all_back_s": None,  # 3 missed the last round: not back
        "median_back_s": 0.4,
        "lost": 4,
        "never_back": 1,
    }
    assert scale.figures(rounds[:1], 4)["lost"] == 0  # nothing after the fault: nobody lost
    trial = scale.ScaleTrial(4, "node-cut", "net1", 1.0, 0.4, 3, 0, 0.1, 0.2, ["a", "b", "c", "d"], rounds)
    assert scale.summarise([trial])[0]["median_all_back_s"] == 1.0


def test_replies_held_back_and_delivered_late_are_a_gap_until_they_arrive() -> None:
    # Dark from before the heal at 0.3 s: requests 1-7 unanswered (1-2 reported before the heal), their
    # replies held back by the client's kernel and delivered together at 1.05 s.
    samples = pings(".xxxxxxx", start=-0.1)
    samples += [{"t": 1.05, "ok": True, "seq": seq} for seq in range(1, 8)]
    assert gap_s(samples, since=0.3, interval_s=0.1) == (0.65, 5)
