"""The grants on the wire: one UDP datagram per message, signed like the failsafe round.

A datagram is the HMAC-SHA256 (hex) of a label and the body, a newline, and the body (JSON). The label
names the message kind, so that no message can be passed off as another; a node's round carries a nonce,
so that a recorded grant cannot count for another round. Anything else is a ProtocolError. Pure.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

from hastack.failsafe.protocol import ProtocolError, json_object, sign

MAX_DATAGRAM = 1024  # every message fits: names, a nonce, numbers
_REQUEST, _GRANT = b"hastack grant request\n", b"hastack grant\n"


@dataclass(frozen=True)
class Request:
    host: str
    round: int
    nonce: str


@dataclass(frozen=True)
class Grant:
    controller: str
    host: str
    round: int
    nonce: str
    r_n: int  # the node must have read its bindings at this revision or later


def _pack(token: str, label: bytes, fields: dict[str, object]) -> bytes:
    body = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return sign(token, label, body).encode() + b"\n" + body


def _unpack(token: str, label: bytes, datagram: bytes) -> dict[str, object]:
    signature, newline, body = datagram.partition(b"\n")
    if not newline or len(datagram) > MAX_DATAGRAM:
        raise ProtocolError("not a hastack grant datagram")
    if not hmac.compare_digest(signature, sign(token, label, body).encode()):
        raise ProtocolError("wrong signature (another deployment's token, or another kind of message)")
    return json_object(body)


def _text(data: dict[str, object], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{name}: expected a non-empty string")
    return value


def _count(data: dict[str, object], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"{name}: expected a whole number >= 0")
    return value


def request(token: str, r: Request) -> bytes:
    return _pack(token, _REQUEST, {"host": r.host, "round": r.round, "nonce": r.nonce})


def read_request(token: str, datagram: bytes) -> Request:
    data = _unpack(token, _REQUEST, datagram)
    return Request(_text(data, "host"), _count(data, "round"), _text(data, "nonce"))


def grant(token: str, g: Grant) -> bytes:
    fields = {"controller": g.controller, "host": g.host, "round": g.round, "nonce": g.nonce, "r_n": g.r_n}
    return _pack(token, _GRANT, fields)


def read_grant(token: str, datagram: bytes) -> Grant:
    data = _unpack(token, _GRANT, datagram)
    return Grant(
        _text(data, "controller"),
        _text(data, "host"),
        _count(data, "round"),
        _text(data, "nonce"),
        _count(data, "r_n"),
    )
