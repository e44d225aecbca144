"""A router's announcement on a real kernel bridge: to the pinned MAC it reaches the uplink only, and the
bridge learns where the router's MAC is now; a broadcast one reaches every port (what it replaced)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator

import pytest

from hastack.agent import garp
from hastack.agent.gate import in_netns_thread
from hastack.lab import system
from hastack.lab.dataplane import ANNOUNCE_MAC, announce_pin
from tests.conftest import needs_root

BRIDGE_NS = "hs-annc-br"
# bridge port -> the namespace behind it
PORTS = {"prtr": "hs-annc-rtr", "pby": "hs-annc-by", "pup": "hs-annc-up"}
ROUTER_MAC = "fa:16:3e:00:0a:01"


@pytest.fixture
def segment() -> Iterator[None]:
    """A bridge with three ports: the router's, a bystander's (another router), the uplink (VXLAN's)."""
    needs_root("the announcement test")
    try:
        for ns in (BRIDGE_NS, *PORTS.values()):
            system.ensure_netns(ns)
        system.run(["ip", "-n", BRIDGE_NS, "link", "add", "br0", "type", "bridge"])
        system.run(["ip", "-n", BRIDGE_NS, "link", "set", "br0", "up"])
        for port, ns in PORTS.items():
            veth = ["link", "add", port, "type", "veth", "peer", "eth0", "netns", ns]
            system.run(["ip", "-n", BRIDGE_NS, *veth])
            system.run(["ip", "-n", BRIDGE_NS, "link", "set", port, "master", "br0", "up"])
            system.run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        system.run(["ip", "-n", PORTS["prtr"], "link", "set", "eth0", "address", ROUTER_MAC])
        system.run(["bridge", "-n", BRIDGE_NS, "-batch", "-"], stdin=announce_pin("pup") + "\n")
        yield
    finally:
        for ns in (*PORTS.values(), BRIDGE_NS):
            system.delete_netns(ns)


def _listen(port: str) -> socket.socket:
    """A packet socket for ARP in the namespace behind `port` (the rest, IGMP at link-up, is not ours)."""
    proto = socket.htons(garp.ETH_P_ARP)
    sock = in_netns_thread(PORTS[port], lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, proto))
    sock.settimeout(1.0)  # copies are made in microseconds: after this long, none is coming
    return sock


def _heard(sock: socket.socket) -> int:
    frames = 0
    with contextlib.suppress(TimeoutError), sock:
        while True:
            frames += sock.recv(2048)[6:12] == bytes.fromhex(ROUTER_MAC.replace(":", ""))
    return frames


def _announce(dst: str) -> dict[str, int]:
    """ARP frames from the router each namespace behind a port got from one announcement of two
    addresses to `dst`."""
    listeners = {port: _listen(port) for port in ("pup", "pby")}  # the uplink's waits for the frames
    item = garp.Announcement(PORTS["prtr"], "eth0", ROUTER_MAC, ("10.250.10.1", "10.250.10.2"), dst)
    announcer = garp.Announcer()
    try:
        announcer.announce([item], schedule=(0.0,))
        return {port: _heard(sock) for port, sock in listeners.items()}
    finally:
        announcer.forget(PORTS["prtr"])


def test_an_announcement_to_the_pinned_mac_goes_only_up_and_the_bridge_learns(segment: None) -> None:
    assert _announce(ANNOUNCE_MAC) == {"pby": 0, "pup": 2}
    fdb = json.loads(system.run(["bridge", "-n", BRIDGE_NS, "-j", "fdb", "show", "br", "br0"]).stdout)
    assert {"mac": ROUTER_MAC, "ifname": "prtr"} in [{"mac": e["mac"], "ifname": e["ifname"]} for e in fdb]
    # The broadcast it replaced goes to every port: to each of a thousand routers at scale.
    assert _announce(garp.BROADCAST) == {"pby": 2, "pup": 2}
