"""Fault points: parsed from the environment; unset, they do nothing."""

from __future__ import annotations

import pytest

from hastack import faultpoints


def test_fault_points_are_parsed_and_refused_with_the_reason() -> None:
    assert faultpoints.parse("gate-write=6, gate-written=1") == {"gate-write": 6, "gate-written": 1}
    assert faultpoints.parse("") == {}
    for bad in ("gate-write", "gate-write=0", "=3", "gate-write=x"):
        with pytest.raises(ValueError, match=r"HASTACK_FAULT_POINTS: .* is not NAME=N"):
            faultpoints.parse(bad)


def test_without_the_variable_no_point_stops_anything() -> None:
    point = faultpoints.from_environment({})
    assert point is faultpoints.none
    point("gate-write")  # returns: the process was not stopped
