"""Gratuitous ARP from inside router namespaces, from one process: a packet socket per namespace.

When a router starts serving on a node (built there, or a standby there activated), every switch must
learn that its MACs now live behind this node, or it keeps sending the router's traffic to the old one.
`arping` is a process per address: for a node taking over a thousand routers that is thousands of
processes. This keeps one AF_PACKET socket per router namespace (opened from a thread inside it, ~1 ms,
a file descriptor) and sends the frames itself: an ARP request for the address from the address
(`arping -U`), broadcast, on the schedule below.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hastack.agent.gate import GateError, in_netns_thread

ETH_P_ARP = 0x0806
BROADCAST = "ff:ff:ff:ff:ff:ff"
# Three 150 ms apart (one alone can be lost), then more up to 2 s later, after whatever storm the takeover
# itself caused (keepalived's garp_master_delay does the same): a lost announcement leaves a switch
# sending the router's traffic to the old node until its entry ages out, minutes later. The ones in
# between are for ports just set up: a bridge forwards on a port only once the kernel's link watch has
# seen its carrier, which took over a second for 2000 ports, and what came before was dropped.
SCHEDULE_S = (0.0, 0.15, 0.3, 0.6, 1.0, 1.5, 2.0)


def _octets(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def frame(mac: str, address: str, dst: str = BROADCAST) -> bytes:
    """A gratuitous ARP request to `dst`, padded to the Ethernet minimum. Pure."""
    hw = _octets(mac)
    ip = socket.inet_aton(address)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + hw + ip + bytes(6) + ip
    return (_octets(dst) + hw + struct.pack("!H", ETH_P_ARP) + arp).ljust(60, b"\0")


@dataclass(frozen=True)
class Announcement:
    netns: str
    device: str
    mac: str
    addresses: tuple[str, ...]
    # Broadcast, or a unicast address no host owns, which a network pins to its uplinks: every switch on
    # the way learns the router's MAC from the frame, and no host has to process it (lab/dataplane.py).
    dst: str = BROADCAST


class Announcer:
    """Packet sockets per namespace, opened ahead (`prepare`) so an activation sends at once."""

    def __init__(self) -> None:
        self._socks: dict[str, socket.socket] = {}
        self._lock = threading.Lock()

    def prepare(self, netns: str) -> socket.socket:
        with self._lock:
            sock = self._socks.get(netns)
        if sock is None:
            sock = in_netns_thread(netns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
            with self._lock:
                self._socks[netns] = sock
        return sock

    def namespaces(self) -> list[str]:
        with self._lock:
            return list(self._socks)

    def forget(self, netns: str) -> None:
        with self._lock:
            sock = self._socks.pop(netns, None)
        if sock is not None:
            sock.close()

    def announce(self, items: Sequence[Announcement], schedule: Sequence[float] = SCHEDULE_S) -> None:
        """Send every announcement on `schedule` (seconds from now), from a thread: the caller goes on."""
        frames = []
        for a in items:
            try:
                sock = self.prepare(a.netns)
            except GateError:
                continue  # the namespace went meanwhile: nothing to announce
            frames += [(sock, a.device, frame(a.mac, address, a.dst)) for address in a.addresses]
        if frames:
            threading.Thread(target=_send, args=(frames, schedule), daemon=True).start()


def _send(frames: list[tuple[socket.socket, str, bytes]], schedule: Sequence[float]) -> None:
    started = time.monotonic()
    for at in schedule:
        time.sleep(max(0.0, started + at - time.monotonic()))
        for sock, device, data in frames:
            with contextlib.suppress(OSError):  # closed or device gone: the router went meanwhile
                sock.sendto(data, (device, ETH_P_ARP))
