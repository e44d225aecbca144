"""The gate's netlink batches, byte by byte where it matters (the kernel checks the rest: test_gate)."""

from __future__ import annotations

import struct

from hastack.agent import nfnl


def messages(data: bytes) -> list[tuple[int, int, int, bytes]]:
    out, at = [], 0
    while at < len(data):
        length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", data, at)
        out.append((kind, flags, seq, data[at + 16 : at + length]))
        at += length
    return out


def test_a_refresh_is_add_delete_add_and_one_interval_in_both_tables_between_begin_and_end() -> None:
    until = 1_796_000_000_123_456_789
    data, acks = nfnl.refresh("fence", 900, until, seq=40)
    msgs = messages(data)
    kinds = [k for k, _f, _s, _b in msgs]
    new, delete = (10 << 8) | 12, (10 << 8) | 14
    assert kinds == [0x10, *[new, delete, new, delete, new] * 2, 0x11]
    assert [s for _k, _f, s, _b in msgs] == list(range(40, 52))
    assert acks == list(range(41, 51))
    families = [b[0] for k, _f, _s, b in msgs if k in (new, delete)]
    assert families == [1] * 5 + [3] * 5  # inet, then arp
    add = msgs[1][3]
    assert struct.pack(">Q", 900) in add  # the timeout, in milliseconds, big-endian
    assert b"fence\0" in add
    assert b"alive\0" in add
    assert struct.pack(">Q", 900) not in msgs[2][3]  # the delete names the element, no timeout
    flush, interval = msgs[4][3], msgs[5][3]
    assert b"until\0" in flush
    assert struct.pack("=HH", 4 + 4, 3 | 0x8000) not in flush  # no element list: a flush
    assert struct.pack(">Q", 0) in interval  # from the beginning of time...
    assert struct.pack(">Q", until + 1) in interval  # ...to the deadline: the end key is one past it
    assert struct.pack("=HH", 8, 3) + struct.pack(">I", 1) in interval  # flagged the interval's end


def test_a_close_flushes_both_sets() -> None:
    data, acks = nfnl.close("fence", seq=1)
    msgs = messages(data)
    assert [k for k, _f, _s, _b in msgs] == [0x10, *[(10 << 8) | 14] * 4, 0x11]
    assert acks == [2, 3, 4, 5]
    assert all(struct.pack("=HH", 4 + 4, 3 | 0x8000) not in b for _k, _f, _s, b in msgs)  # no element list


def test_acknowledgements_and_errors_are_told_apart() -> None:
    ack = struct.pack("=IHHII", 36, 2, 0, 7, 0) + struct.pack("=i", 0) + bytes(16)
    refused = struct.pack("=IHHII", 36, 2, 0, 8, 0) + struct.pack("=i", -2) + bytes(16)
    assert nfnl.errors(ack + refused) == {7: 0, 8: 2}
    assert nfnl.errors(b"") == {}
