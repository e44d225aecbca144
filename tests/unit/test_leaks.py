"""What a lab must not be left with after faults: namespaces nothing records, faults still recorded."""

from __future__ import annotations

from hastack.lab.leaks import leaks
from hastack.lab.state import LabState


def test_a_namespace_nothing_records_and_a_fault_still_recorded_are_leaks() -> None:
    state = LabState(namespaces=["hs-db1"], faults=[{"kind": "cut", "target": "net1"}])
    found = leaks(state, present={"hs-db1", "hs-stray", "not-the-labs"})
    assert found == [
        "namespace hs-stray exists, and nothing of the lab records it",
        "fault cut net1 still recorded",
    ]
    assert leaks(LabState(namespaces=["hs-db1"]), present={"hs-db1", "elsewhere"}) == []
