"""Dual-active time from gate samples: pure arithmetic on plain values."""

from __future__ import annotations

import pytest

from hastack.bench.gates import (
    PROBE_TABLE,
    Sample,
    dual_active,
    dual_forwarding,
    forwarding_nodes,
    read_namespace,
)


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


def test_two_nodes_forwarding_in_one_interval_is_dual_forwarding() -> None:
    samples = [
        s(0.00, {}, {"r1": {"net1": 5, "net2": 0}}),
        s(0.01, {}, {"r1": {"net1": 6, "net2": 0}}),  # net1 alone
        s(0.02, {}, {"r1": {"net1": 7, "net2": 1}}),  # both: 10 ms
        s(0.03, {}, {"r1": {"net1": 7, "net2": 2}}),  # net2 alone
    ]
    assert dual_forwarding(samples) == {"r1": pytest.approx(0.01)}


def test_a_namespace_without_a_gate_counts_as_open_once_it_forwards_and_the_probe_is_read() -> None:
    ungated = {"nftables": [{"table": {"family": "inet", "name": PROBE_TABLE}}, probe_rule(42)]}
    assert read_namespace(ungated, forwarding=True) == (True, 42)
    assert read_namespace(ungated, forwarding=False) == (False, 42)  # being built: nothing can pass
    shut = {
        "nftables": [
            {"table": {"family": "inet", "name": "fence"}},
            {"set": {"family": "inet", "table": "fence", "name": "alive"}},
            probe_rule(3),
        ]
    }
    assert read_namespace(shut) == (False, 3)
    opened = {"nftables": [*shut["nftables"][:1], {"set": {**shut["nftables"][1]["set"], "elem": [0]}}]}
    assert read_namespace(opened) == (True, None)  # no probe put in yet


def probe_rule(packets: int) -> dict[str, object]:
    return {"rule": {"table": PROBE_TABLE, "expr": [{"counter": {"packets": packets, "bytes": 0}}]}}
