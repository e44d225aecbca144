"""The shared lab: brought up once for this package's tests from examples/paper.yaml, torn down after them.

Lab tests need root (namespaces, daemons). They are skipped without it, except under CI, where a
missing lab is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hastack.lab import realise, system
from hastack.lab.plan import LabPlan, plan
from hastack.lab.state import LabState, locked
from hastack.model import load_deployment
from tests import conftest as shared

PAPER = Path(__file__).resolve().parents[2] / "examples" / "paper.yaml"


@dataclass(frozen=True)
class Snapshot:
    """What the machine has outside the lab's control: compared before `up` and after `down`."""

    namespaces: frozenset[str]
    root_links: frozenset[str]
    mounts: frozenset[str]

    @classmethod
    def take(cls) -> Snapshot:
        links = system.run(["ip", "-o", "link", "show"]).stdout.splitlines()
        return cls(
            namespaces=frozenset(system.netns_list()),
            root_links=frozenset(line.split(":")[1].strip().split("@")[0] for line in links),
            mounts=frozenset(Path("/proc/mounts").read_text().splitlines()),
        )


def needs_root() -> None:
    shared.needs_root("lab tests")


@dataclass
class Lab:
    plan: LabPlan
    before: Snapshot


@pytest.fixture(scope="package")  # down before tests/lab_openstack brings the OpenStack lab up
def lab() -> Iterator[Lab]:
    needs_root()
    if not LabState.load().is_empty:
        pytest.fail("a lab is already up: run `hastack lab down` before the lab tests")
    yield from brought_up(PAPER)


def brought_up(inventory: Path) -> Iterator[Lab]:
    """A fixture's lab: up from `inventory`, and down afterwards (after a failed `up` too)."""
    before = Snapshot.take()
    p = plan(load_deployment(inventory))
    try:
        with locked():
            realise.up(p, LabState.load(), str(inventory), lambda _step: None)
        yield Lab(p, before)
    finally:
        with locked():
            realise.down(LabState.load(), lambda _step: None)
