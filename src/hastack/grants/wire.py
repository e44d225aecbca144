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
_SILENT, _PROMISE = b"hastack promise request\n", b"hastack promise\n"
_BEAT = b"hastack controller beat\n"
_KINDS = (
    ("request", _REQUEST),
    ("grant", _GRANT),
    ("silent", _SILENT),
    ("promise", _PROMISE),
    ("beat", _BEAT),
)


@dataclass(frozen=True)
class Request:
    host: str
    round: int
    nonce: str
    # The revision of the bindings read the node's gates were last applied from (0: none, or not under
    # policy hastack): a router unbound from it at or before that revision is shut there.
    applied: int = 0


@dataclass(frozen=True)
class Grant:
    controller: str
    host: str
    round: int
    nonce: str
    r_n: int  # the node must have read its bindings at this revision or later


@dataclass(frozen=True)
class Silent:
    """The leader asks: promise to grant `host` nothing more."""

    leader: str
    host: str
    nonce: str


@dataclass(frozen=True)
class Promise:
    """A controller's answer to `Silent`: the id its promise key holds, or "" and why it did not promise."""

    controller: str
    host: str
    nonce: str
    promise: str
    refused: str = ""


@dataclass(frozen=True)
class Beat:
    """A controller to its peers, every round: the leader key it last read, whether it has heard nothing
    from that leader for the suspicion time, and whether it reaches the store itself."""

    controller: str
    leader: str  # the leader key's value (the term's token) as last read; "" if none
    suspects: bool
    healthy: bool


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
    fields = {"host": r.host, "round": r.round, "nonce": r.nonce, "applied": r.applied}
    return _pack(token, _REQUEST, fields)


def read_request(token: str, datagram: bytes) -> Request:
    data = _unpack(token, _REQUEST, datagram)
    applied = _count(data, "applied") if "applied" in data else 0
    return Request(_text(data, "host"), _count(data, "round"), _text(data, "nonce"), applied)


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


def silent(token: str, s: Silent) -> bytes:
    return _pack(token, _SILENT, {"leader": s.leader, "host": s.host, "nonce": s.nonce})


def read_silent(token: str, datagram: bytes) -> Silent:
    data = _unpack(token, _SILENT, datagram)
    return Silent(_text(data, "leader"), _text(data, "host"), _text(data, "nonce"))


def promise(token: str, p: Promise) -> bytes:
    fields: dict[str, object] = {
        "controller": p.controller,
        "host": p.host,
        "nonce": p.nonce,
        "promise": p.promise,
        "refused": p.refused,
    }
    return _pack(token, _PROMISE, fields)


def read_promise(token: str, datagram: bytes) -> Promise:
    data = _unpack(token, _PROMISE, datagram)
    promise, refused = data.get("promise"), data.get("refused")
    if not isinstance(promise, str) or not isinstance(refused, str) or bool(promise) == bool(refused):
        raise ProtocolError("promise: expected either a promise id or the reason it was refused")
    return Promise(_text(data, "controller"), _text(data, "host"), _text(data, "nonce"), promise, refused)


def beat(token: str, b: Beat) -> bytes:
    fields = {"controller": b.controller, "leader": b.leader, "suspects": b.suspects, "healthy": b.healthy}
    return _pack(token, _BEAT, fields)


def read_beat(token: str, datagram: bytes) -> Beat:
    data = _unpack(token, _BEAT, datagram)
    leader, suspects, healthy = data.get("leader"), data.get("suspects"), data.get("healthy")
    if not isinstance(leader, str) or not isinstance(suspects, bool) or not isinstance(healthy, bool):
        raise ProtocolError("beat: expected leader (string), suspects and healthy (true or false)")
    return Beat(_text(data, "controller"), leader, suspects, healthy)


def kind(datagram: bytes, token: str) -> str:
    """Which message a datagram signs: request, grant, silent, promise, beat, or "" (none, or not ours)."""
    signature, newline, body = datagram.partition(b"\n")
    if not newline or len(datagram) > MAX_DATAGRAM:
        return ""
    for name, label in _KINDS:
        if hmac.compare_digest(signature, sign(token, label, body).encode()):
            return name
    return ""
