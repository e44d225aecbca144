"""The catalog reproduces the paper's Table 1: checked against the paper's own text."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from hastack.catalog import CATALOG, Scope, Severity, component

MARK = "\u00d7"  # the paper marks cells with a multiplication sign
PAPER_DIR = Path(__file__).resolve().parents[3] / "shared" / "paper"


def _paper_table() -> dict[str, tuple[Severity, bool, bool, bool]]:
    """Parse Table 1 (| Component | low | med | high | database | message-queue | stateful |)."""
    files = sorted(PAPER_DIR.glob("*.txt"))
    if not files:
        if os.environ.get("CI"):
            pytest.fail(f"the paper is missing from {PAPER_DIR}")
        pytest.skip(f"the paper is not at {PAPER_DIR}")
    text = files[0].read_text(encoding="utf-8")
    start = text.index("| Component")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name, low, med, high, db, mq, stateful = cells
        marks = [m == MARK for m in (low, med, high)]
        assert sum(marks) == 1, f"row {name!r} must have exactly one severity mark"
        severity = (Severity.LOW, Severity.MEDIUM, Severity.HIGH)[marks.index(True)]
        rows[name] = (severity, db == MARK, mq == MARK, stateful == MARK)
    return rows


def test_every_table1_row_is_in_the_catalog_with_the_papers_marks() -> None:
    table = _paper_table()
    assert len(table) == 23
    for row, expected in table.items():
        entries = [c for c in CATALOG if c.table1 == row]
        assert entries, f"Table 1 row {row!r} has no catalog entry"
        for c in entries:
            got = (c.severity, c.uses_db, c.uses_mq, c.stateful)
            assert got == expected, f"{c.name} (row {row!r}): {got} != paper {expected}"


def test_catalog_has_no_table1_row_the_paper_lacks() -> None:
    table = _paper_table()
    assert {c.table1 for c in CATALOG if c.table1} == set(table)


def test_api_services_row_covers_the_three_apis() -> None:
    assert {c.name for c in CATALOG if c.table1 == "API Services"} == {"nova-api", "glance-api", "cinder-api"}


def test_hastack_entries_are_marked_as_ours() -> None:
    assert component("etcd").source == "hastack"
    assert component("keystone").source == "paper Table 1"


def test_host_scoped_components_are_the_per_host_agents() -> None:
    host_scoped = {c.name for c in CATALOG if c.scope is Scope.HOST}
    assert host_scoped == {"hypervisor", "nova-compute", "swift-storage", "plugin-agent", "hastack-agent"}


def test_names_are_unique_and_lowercase() -> None:
    names = [c.name for c in CATALOG]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z0-9-]+", n) for n in names)
