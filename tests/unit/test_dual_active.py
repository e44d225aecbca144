"""Dual-active time from gate samples: pure arithmetic on plain values."""

from __future__ import annotations

from hastack.bench.gates import Sample, dual_active, forwarding_nodes


def s(t: float, open_: dict[str, set[str]], counts: dict[str, dict[str, int]] | None = None) -> Sample:
    return Sample(t, {r: frozenset(n) for r, n in open_.items()}, counts or {})


def test_overlap_counts_each_sample_until_the_next() -> None:
    samples = [
        s(0.00, {"r1": {"net1"}}),
        s(0.01, {"r1": {"net1", "net2"}, "r2": {"net2"}}),
        s(0.03, {"r1": {"net1", "net2"}}),
        s(0.04, {"r1": {"net2"}}),
        s(0.05, {"r1": {"net2"}}),
    ]
    assert dual_active(samples) == {"r1": 0.03}


def test_no_overlap_no_entry() -> None:
    assert dual_active([s(0, {"r1": {"net1"}}), s(1, {"r1": {"net2"}}), s(2, {})]) == {}


def test_forwarders_are_nodes_whose_counter_rose() -> None:
    samples = [
        s(0, {}, {"r1": {"net1": 10}}),
        s(1, {}, {"r1": {"net1": 12}}),
        s(2, {}, {"r1": {"net1": 12, "net2": 0}}),
        s(3, {}, {"r1": {"net1": 12, "net2": 4}}),
    ]
    assert forwarding_nodes(samples, "r1") == [(1, "net1"), (3, "net2")]
