"""The gratuitous ARP frame the L3 agents send as a router starts serving on a node."""

from __future__ import annotations

import socket

from hastack.agent import garp
from hastack.lab.dataplane import ANNOUNCE_MAC, announce_pin, segment_lines


def test_a_frame_is_an_arp_request_for_the_address_from_the_address() -> None:
    f = garp.frame("fa:16:3e:00:00:01", "10.244.0.16")
    assert len(f) == 60  # the Ethernet minimum, padded
    assert f[:6] == b"\xff" * 6  # broadcast unless told otherwise
    assert f[6:12] == bytes.fromhex("fa163e000001")
    assert f[12:14] == b"\x08\x06"
    assert f[20:22] == b"\x00\x01"  # a request
    assert f[22:28] == bytes.fromhex("fa163e000001")
    assert f[28:32] == f[38:42] == socket.inet_aton("10.244.0.16")


def test_the_lab_announces_to_a_unicast_mac_that_every_segment_pins_to_its_vxlan_port() -> None:
    f = garp.frame("fa:16:3e:00:00:01", "10.244.0.16", ANNOUNCE_MAC)
    assert f[:6] == bytes.fromhex(ANNOUNCE_MAC.replace(":", ""))
    assert not f[0] & 1  # unicast: a bridge forwards it by its table, which the pin decides
    ip, fdb = segment_lines(4000, "10.240.0.21", ["10.240.0.21", "10.240.0.22"], set())
    assert "link add vx4000 type vxlan id 4000 local 10.240.0.21 dstport 4789" in ip
    assert fdb == ["fdb append 00:00:00:00:00:00 dev vx4000 dst 10.240.0.22", announce_pin("vx4000")]
