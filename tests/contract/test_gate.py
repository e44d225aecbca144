"""The kernel gate on a real kernel: a router namespace forwards only while the agent refreshes it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from hastack.agent import gate
from hastack.lab import system
from tests.conftest import needs_root

A, R, B = "hs-gate-a", "hs-gate-r", "hs-gate-b"


@pytest.fixture
def router() -> Iterator[str]:
    """a (10.250.1.2) -- r (forwarding) -- b (10.250.2.2), made here and removed whatever happens."""
    needs_root("the gate test")
    try:
        for ns in (A, R, B):
            system.ensure_netns(ns)
        for side, net in ((A, 1), (B, 2)):
            system.run(
                [
                    "ip",
                    "-n",
                    R,
                    "link",
                    "add",
                    f"r{net}",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    side,
                ]
            )
            system.run(["ip", "-n", R, "addr", "add", f"10.250.{net}.1/24", "dev", f"r{net}"])
            system.run(["ip", "-n", R, "link", "set", f"r{net}", "up"])
            system.run(["ip", "-n", side, "addr", "add", f"10.250.{net}.2/24", "dev", "eth0"])
            system.run(["ip", "-n", side, "link", "set", "eth0", "up"])
            system.run(["ip", "-n", side, "route", "add", "default", "via", f"10.250.{net}.1"])
        system.run(system.in_netns_shared_mounts(R, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
        yield R
    finally:
        for ns in (A, R, B):
            system.delete_netns(ns)


def until(seconds: float) -> int:
    """A wall-clock deadline `seconds` from now, in the kernel's `meta time` nanoseconds."""
    return int((time.time() + seconds) * 1e9)


def _forwards() -> bool:
    """Any echo reply from b through r. Two tries: after the gate dropped ARP, the first resolution of a
    neighbour that had failed can take longer than one short ping waits."""
    argv = system.in_netns_shared_mounts(A, ["ping", "-c", "2", "-i", "0.2", "-W", "0.4", "-q", "10.250.2.2"])
    return system.run(argv, check=False).returncode == 0


def test_the_gate_forwards_only_while_refreshed(router: str) -> None:
    assert _forwards()  # without a gate, the router forwards
    gates = gate.Gates()
    gate.install(router)
    assert not _forwards()  # installed shut: no element yet
    gates.refresh(router, 600, until(60))
    assert _forwards()
    time.sleep(0.8)  # nobody refreshes: the kernel closes the gate by itself
    assert not _forwards()
    gates.refresh(router, 5000, until(60))
    assert _forwards()
    gates.close(router)  # the agent closes it at once (L3 agent died, lease revoked)
    assert not _forwards()
    gate.install(router)  # idempotent: replacing the table leaves it shut, not broken
    gates.refresh(router, 5000, until(60))
    assert _forwards()


def test_the_wall_clock_deadline_shuts_the_gate_whatever_the_timeout(router: str) -> None:
    """What a node agent stalled between computing a refresh and the kernel's write would send: a
    timeout computed before the stall (still long) with the deadline fixed at the keepalive (past)."""
    gates = gate.Gates()
    gate.install(router)
    gates.refresh(router, 5000, until(-0.5))
    assert not _forwards()  # the deadline has passed: the long timeout opens nothing
    gates.refresh(router, 5000, until(0.6))
    assert _forwards()
    time.sleep(0.8)
    assert not _forwards()  # shut at the deadline, 4 s before the timeout would have run out
    gates.refresh(router, 5000, until(60))
    assert _forwards()
    listed = system.run(
        system.in_netns_shared_mounts(router, ["nft", "list", "set", "arp", "fence", "until"])
    )
    assert "1970-01-01" in listed.stdout  # one interval from the beginning of time, in the arp table too


def test_in_process_handles_drive_the_gate_and_count_what_it_forwards(router: str) -> None:
    gate.install(router)
    gates = gate.Gates()
    assert gates.forwarded(router) == 0
    assert not _forwards()
    assert not gates.is_open(router)
    gates.refresh(router, 600, until(60))
    assert gates.is_open(router)
    assert _forwards()
    counted = gates.forwarded(router)
    assert counted >= 2  # the echo request and its reply both crossed the router
    time.sleep(0.8)
    assert not gates.is_open(router)  # run out: not listed, collected or not
    assert not _forwards()
    assert gates.forwarded(router) == counted  # shut: nothing more went through
    gates.refresh(router, 5000, until(60))
    gates.close(router)
    assert not _forwards()
    gates.keep_only([])
    with pytest.raises(gate.GateError):
        gates.forwarded("hs-gate-none")  # a namespace that does not exist is an error, never created
    assert not os.path.exists("/run/netns/hs-gate-none")


def test_a_namespace_made_again_under_the_same_name_is_the_one_gated() -> None:
    needs_root("the gate test")
    ns = "hs-gate-again"
    gates = gate.Gates()
    try:
        system.ensure_netns(ns)
        gate.install(ns)
        gates.refresh(ns, 5000, until(60))  # a handle on the first namespace of that name
        system.delete_netns(ns)
        system.ensure_netns(ns)  # a router rebuilt between two refreshes
        gate.install(ns)
        gates.refresh(ns, 5000, until(60))
        listed = system.run(
            system.in_netns_shared_mounts(ns, ["nft", "list", "set", "inet", "fence", "alive"])
        )
        assert "timeout 5s" in listed.stdout  # the new namespace's gate, not the old one's
    finally:
        gates.keep_only([])
        system.delete_netns(ns)
