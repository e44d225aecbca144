"""The ICMP sweep on a real kernel, in a namespace of its own: who answers each round, who does not."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hastack.lab import system
from tests.conftest import needs_root

NS = "hs-sweep-test"


@pytest.fixture
def netns() -> Iterator[str]:
    """lo and a veth whose peer stays down: 10.250.9.1 answers, 10.250.9.7 (on its subnet) never does."""
    needs_root("the sweep test")
    try:
        system.ensure_netns(NS)
        system.run(["ip", "-n", NS, "link", "set", "lo", "up"])
        system.run(["ip", "-n", NS, "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
        system.run(["ip", "-n", NS, "addr", "add", "10.250.9.1/24", "dev", "d0"])
        system.run(["ip", "-n", NS, "link", "set", "d0", "up"])
        yield NS
    finally:
        system.delete_netns(NS)


def test_a_round_lists_the_targets_that_did_not_answer(netns: str) -> None:
    targets = "127.0.0.1,10.250.9.7,10.250.9.1"
    argv = [sys.executable, "-m", "hastack.bench.probe", "sweep", "--targets", targets]
    done = subprocess.run(
        system.in_netns(netns, [*argv, "--seconds", "0.6", "--interval", "0.1"]),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {"targets": ["127.0.0.1", "10.250.9.7", "10.250.9.1"]}
    rounds = lines[1:]
    assert 5 <= len(rounds) <= 7
    assert [r["seq"] for r in rounds] == list(range(len(rounds)))
    assert all(r["missing"] == [1] for r in rounds)  # only the address nobody holds
    assert all(b["t"] - a["t"] >= 0.09 for a, b in itertools.pairwise(rounds))
