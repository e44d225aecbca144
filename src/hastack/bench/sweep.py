"""An ICMP sweep: one echo request to each of many addresses per round, from one raw socket.

`ping` is one process per target: for `bench scale`'s 1000 routers that is 1000 processes on a 2-core
machine. This sends a round to every target every `interval` (echo id = this process, sequence = the
round) and prints, per round, which targets did not answer it (replies are matched to their round by
sequence number, so a late reply still counts for the round it answers):

    python -m hastack.bench.probe sweep --targets A,B,C --seconds 60 --interval 0.2

First line {"targets": [...]}, then one {"t": round start (wall clock), "seq": n, "missing": [indices]}
per round, in order, each printed once the next round's window has closed. Bounded by --seconds; the
caller may also stop it early. Needs CAP_NET_RAW (the lab runs it as root).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import struct
import time
from collections.abc import Sequence

ECHO_REQUEST, ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071). Pure."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return int(~total & 0xFFFF)


def echo_request(ident: int, seq: int) -> bytes:
    """An ICMP echo request with 8 bytes of payload. Pure."""
    payload = b"hastack!"
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident, seq) + payload


def parse_reply(packet: bytes, ident: int) -> tuple[str, int] | None:
    """(source address, sequence) of an echo reply to this sweep in a raw IPv4 packet, else None. Pure."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 8:
        return None
    kind, _code, _sum, got_ident, seq = struct.unpack("!BBHHH", packet[ihl : ihl + 8])
    if kind != ECHO_REPLY or got_ident != ident:
        return None
    return socket.inet_ntoa(packet[12:16]), seq


def sweep(targets: Sequence[str], seconds: float, interval: float) -> None:
    index = {a: i for i, a in enumerate(targets)}
    ident = os.getpid() & 0xFFFF
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setblocking(False)
    print(json.dumps({"targets": list(targets)}), flush=True)
    answered: dict[int, set[int]] = {}  # round -> target indices that answered it
    started: dict[int, float] = {}
    deadline, seq = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        started[seq] = time.time()
        answered[seq] = set()
        window_end = time.monotonic() + interval
        for address in targets:
            with contextlib.suppress(OSError):  # no route or neighbour yet: the round shows it missing
                sock.sendto(echo_request(ident, seq & 0xFFFF), (address, 0))
        while (left := window_end - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                continue
            while True:
                try:
                    got = parse_reply(sock.recv(2048), ident)
                except BlockingIOError:
                    break
                if got and got[0] in index:
                    for n in (s for s in (seq, seq - 1) if (s & 0xFFFF) == got[1] and s in answered):
                        answered[n].add(index[got[0]])
        if seq >= 1:  # the round before this one has had two windows to be answered in
            _emit(seq - 1, started, answered, len(targets))
        seq += 1
    if seq:
        _emit(seq - 1, started, answered, len(targets))


def _emit(n: int, started: dict[int, float], answered: dict[int, set[int]], count: int) -> None:
    missing = sorted(set(range(count)) - answered.pop(n))
    print(json.dumps({"t": round(started.pop(n), 4), "seq": n, "missing": missing}), flush=True)
