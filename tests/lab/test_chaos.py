"""A short fault campaign on the paper lab: random overlapping faults, the safety invariants checked on
the data plane and in the stores, the lab whole again afterwards. (Gap goals are the benchmark's: the
long campaign in `bench all` reports them; here a breach of one only shows in the output.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hastack.cli.errors import run_guarded
from hastack.cli.main import cli
from hastack.lab import dataplane, system
from hastack.lab.state import LabState
from hastack.lab.topology import network_plan
from tests.lab.conftest import PAPER, Lab


@pytest.mark.timeout(1200)
def test_a_short_campaign_keeps_every_safety_invariant(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "chaos"
    code = run_guarded(cli, ["bench", "chaos", str(PAPER), "--faults", "20", "--seed", "3", "-o", str(out)])
    data = json.loads((out / "chaos.json").read_text())
    inv = data["invariants"]
    ran = [r for r in data["done"] if not r["skipped"]]
    assert len(ran) >= 15, data["done"]  # a few may find their service still down from an earlier kill
    assert inv["dual_active_s"] == 0.0
    assert inv["dual_forwarding_s"] == 0.0
    assert data["workloads"]["acknowledged_commits"] > 100
    assert inv["lost_commits"] == 0
    assert data["workloads"]["confirmed_messages"] > 100
    assert inv["lost_messages"] == 0
    assert inv["unrecovered"] == []
    assert inv["after_campaign"] == []  # lab verify passed, nothing leaked
    assert code == (1 if inv["breaches"] else 0)
    assert (out / "chaos.png").stat().st_size > 10_000
    assert "Fault campaign" in (out / "REPORT.md").read_text()
    # Healed as it went: no fault left recorded, every VM answers.
    assert LabState.load().faults == []
    n = network_plan(lab.plan.deployment)
    system.poll("every VM to answer", lambda: all(dataplane.reachability(n, 1.0).values()), 60, 1.0)


def test_a_replay_reruns_the_schedule_exactly(lab: Lab, tmp_path: Path) -> None:
    first, again = tmp_path / "first", tmp_path / "again"
    run_guarded(cli, ["bench", "chaos", "--faults", "3", "--seed", "11", "-o", str(first)])
    run_guarded(cli, ["bench", "chaos", "--replay", str(first / "chaos.json"), "-o", str(again)])
    one, two = (json.loads((d / "chaos.json").read_text()) for d in (first, again))
    assert two["schedule"] == one["schedule"]
    assert two["seed"] == 11
    assert [r["label"] for r in two["done"]] == [x["label"] for x in one["schedule"]]
