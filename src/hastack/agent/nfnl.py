"""The gate's two writes (refresh, close) as nf_tables netlink batches on a raw socket.

A node that hosts or stands by for a thousand routers holds a gate in each namespace. A libnftables
context per namespace costs ~1.7 MB and ~6 ms to open (measured); the node agent's writes are two fixed
transactions, so it sends them itself on a plain NETLINK_NETFILTER socket opened inside the namespace
(a file descriptor, ~0.2 ms to open): refresh = add, delete, add the timed element (works whether or
not it exists, never closes the gate, and sets the new timeout, which a bare "add" of an existing
element would not), then flush the `until` interval set and add the one interval [0, deadline] of
wall-clock nanoseconds (`meta time`); close = flush both sets; each one atomic batch over the `inet`
and the `arp` table. The encoding follows include/uapi/linux/netfilter/nf_tables.h; the contract tests
check it on the kernel against what `nft` lists. Encoding is pure; `send` is the I/O.
"""

from __future__ import annotations

import os
import socket
import struct

NETLINK_NETFILTER = 12
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE = 0x1, 0x4, 0x400
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES = 0x10, 0x11, 10
NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM = 12, 14
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_FLAGS, NFTA_SET_ELEM_TIMEOUT = 1, 3, 4
NFT_SET_ELEM_INTERVAL_END = 1
NFTA_DATA_VALUE = 1
FAMILIES = (1, 3)  # NFPROTO_INET, NFPROTO_ARP: the gate's two tables
KEY = struct.pack("=I", 0)  # the one element: mark 0, what every packet carries in the gate's namespaces


def attr(kind: int, payload: bytes, nested: bool = False) -> bytes:
    """One netlink attribute, padded to 4 bytes. Pure."""
    head = struct.pack("=HH", 4 + len(payload), kind | (NLA_F_NESTED if nested else 0))
    return head + payload + b"\0" * (-len(payload) % 4)


def message(kind: int, flags: int, seq: int, family: int, body: bytes, res_id: int = 0) -> bytes:
    """nlmsghdr + nfgenmsg (res_id in network order) + attributes. Pure."""
    payload = struct.pack("=BBH", family, 0, socket.htons(res_id)) + body
    return struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload


def _elements(table: str, timeout_ms: int | None, with_element: bool = True) -> bytes:
    body = attr(NFTA_SET_ELEM_LIST_TABLE, table.encode() + b"\0")
    body += attr(NFTA_SET_ELEM_LIST_SET, b"alive\0")
    if not with_element:  # no element list: the kernel flushes the set
        return body
    element = attr(NFTA_SET_ELEM_KEY, attr(NFTA_DATA_VALUE, KEY), nested=True)
    if timeout_ms is not None:
        element += attr(NFTA_SET_ELEM_TIMEOUT, struct.pack(">Q", timeout_ms))
    return body + attr(NFTA_SET_ELEM_LIST_ELEMENTS, attr(NFTA_LIST_ELEM, element, nested=True), nested=True)


def _until(table: str, until_ns: int | None) -> bytes:
    """The `until` set: flushed (None), or its one interval [0, until_ns]. An interval set holds keys in
    network order (the rule converts `meta time` with a byteorder expression before the lookup) and an
    interval as a start element and an end element, the end one past the last value, flagged END."""
    body = attr(NFTA_SET_ELEM_LIST_TABLE, table.encode() + b"\0") + attr(NFTA_SET_ELEM_LIST_SET, b"until\0")
    if until_ns is None:
        return body
    start = attr(NFTA_SET_ELEM_KEY, attr(NFTA_DATA_VALUE, struct.pack(">Q", 0)), nested=True)
    end = attr(NFTA_SET_ELEM_KEY, attr(NFTA_DATA_VALUE, struct.pack(">Q", until_ns + 1)), nested=True)
    end += attr(NFTA_SET_ELEM_FLAGS, struct.pack(">I", NFT_SET_ELEM_INTERVAL_END))
    both = attr(NFTA_LIST_ELEM, start, nested=True) + attr(NFTA_LIST_ELEM, end, nested=True)
    return body + attr(NFTA_SET_ELEM_LIST_ELEMENTS, both, nested=True)


def _batch(ops: list[tuple[int, int, bytes]], seq: int) -> tuple[bytes, list[int]]:
    """BEGIN, the ops (each acknowledged), END; the bytes and the sequence numbers to expect acks for."""
    subsys = NFNL_SUBSYS_NFTABLES << 8
    out = [message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, b"", res_id=NFNL_SUBSYS_NFTABLES)]
    acks = []
    for i, (kind, family, body) in enumerate(ops, 1):
        flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE if kind == NFT_MSG_NEWSETELEM else 0)
        out.append(message(subsys | kind, flags, seq + i, family, body))
        acks.append(seq + i)
    out.append(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + len(ops) + 1, 0, b"", NFNL_SUBSYS_NFTABLES))
    return b"".join(out), acks


def refresh(table: str, timeout_ms: int, until_ns: int, seq: int) -> tuple[bytes, list[int]]:
    """Add, delete, add the element with `timeout_ms`, and make [0, until_ns] the one interval of the
    `until` set, in both families, atomically. Pure."""
    ops = []
    for family in FAMILIES:
        add = (NFT_MSG_NEWSETELEM, family, _elements(table, timeout_ms))
        ops += [add, (NFT_MSG_DELSETELEM, family, _elements(table, None)), add]
        ops += [(NFT_MSG_DELSETELEM, family, _until(table, None))]
        ops += [(NFT_MSG_NEWSETELEM, family, _until(table, until_ns))]
    return _batch(ops, seq)


def close(table: str, seq: int) -> tuple[bytes, list[int]]:
    """Flush both sets in both families: the gate shuts at once. Pure."""
    ops = []
    for family in FAMILIES:
        ops += [(NFT_MSG_DELSETELEM, family, _elements(table, None, with_element=False))]
        ops += [(NFT_MSG_DELSETELEM, family, _until(table, None))]
    return _batch(ops, seq)


def errors(data: bytes) -> dict[int, int]:
    """The NLMSG_ERROR replies in a read: sequence number -> errno (0 is an acknowledgement). Pure."""
    found, at = {}, 0
    while at + 16 <= len(data):
        length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, at)
        if length < 16:
            break
        if kind == NLMSG_ERROR and length >= 20:
            found[seq] = -struct.unpack_from("=i", data, at + 16)[0]
        at += (length + 3) & ~3
    return found


def open_socket() -> socket.socket:
    """A NETLINK_NETFILTER socket in the calling thread's network namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.settimeout(1.0)
    sock.bind((0, 0))
    return sock


def send(sock: socket.socket, batch: tuple[bytes, list[int]]) -> None:
    """Send a batch and wait for every acknowledgement; OSError with the kernel's errno if one failed."""
    data, expected = batch
    sock.send(data)
    receive(sock, expected)


def receive(sock: socket.socket, expected: list[int]) -> None:
    """Wait for the acknowledgements of a batch sent on `sock`; OSError if one reports a failure."""
    waiting = set(expected)
    while waiting:
        for seq, code in errors(sock.recv(65536)).items():
            if code:
                raise OSError(code, f"nf_tables refused the gate's change: {os.strerror(code)}")
            waiting.discard(seq)
