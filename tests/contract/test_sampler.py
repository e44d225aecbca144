"""The dual-active sampler on the real kernel: router namespaces, gated or not, rebuilt under it."""

from __future__ import annotations

import time

from hastack.agent import gate
from hastack.bench.gates import GateSampler
from hastack.lab import system
from tests.conftest import needs_root


def test_the_sampler_reads_every_namespace_and_survives_rebuilds_under_it() -> None:
    needs_root("the sampler test")
    gated, bare = "hs-sample-gated", "hs-sample-bare"
    sampler = GateSampler({("net1", "r1"): gated, ("net2", "r1"): bare}, interval_s=0.002, max_s=60)
    try:
        system.ensure_netns(bare)  # no gate: open once forwarding is on
        sampler.start()
        for _ in range(25):  # a router rebuilt again and again while it is sampled
            system.ensure_netns(gated)
            gate.install(gated)
            time.sleep(0.01)
            system.delete_netns(gated)
        system.ensure_netns(gated)
        gate.install(gated)
        system.run(system.in_netns_shared_mounts(bare, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
        time.sleep(0.1)
        samples = sampler.stop()
    finally:
        sampler.done.set()
        for ns in (gated, bare):
            system.delete_netns(ns)
    last = samples[-1]
    assert last.open == {"r1": frozenset({"net2"})}  # the bare one forwards, the gated one is shut
    assert set(last.forwarded["r1"]) == {"net1", "net2"}  # the probe is in both, gated or not
    assert any("net2" not in s.open.get("r1", ()) for s in samples)  # bare, forwarding off: not open
