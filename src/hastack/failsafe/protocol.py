"""The failsafe round on the wire: a signed question from a node agent, a signed answer from a controller.

Both sides hold the deployment's controller token. A question is `{"host", "nonce"}`; an answer is
`{"controller", "host", "nonce", "answer": "yes"|"no", "reason"}`. Each body travels with an HMAC-SHA256
of a label and the body (`X-Hastack-Signature`), under the token: a peer without it can neither ask nor
answer, a recorded answer cannot be replayed to another round (the nonce), and an answer cannot be passed
off as a question (the labels differ). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

HEADER = "X-Hastack-Signature"
PATH = "/failsafe"
_QUESTION, _ANSWER = b"hastack failsafe question\n", b"hastack failsafe answer\n"


class ProtocolError(ValueError):
    """A body that is not a well-formed, correctly signed question or answer."""


@dataclass(frozen=True)
class Question:
    host: str
    nonce: str


@dataclass(frozen=True)
class Reply:
    controller: str
    host: str
    nonce: str
    yes: bool
    reason: str


def sign(token: str, label: bytes, body: bytes) -> str:
    return hmac.new(token.encode(), label + body, hashlib.sha256).hexdigest()


def question(token: str, host: str) -> tuple[Question, bytes, str]:
    """A new question from `host`: the value, its body and its signature."""
    q = Question(host, secrets.token_hex(16))
    body = json.dumps({"host": q.host, "nonce": q.nonce}, sort_keys=True).encode()
    return q, body, sign(token, _QUESTION, body)


def answer(token: str, controller: str, q: Question, yes: bool, reason: str) -> tuple[bytes, str]:
    body = json.dumps(
        {
            "controller": controller,
            "host": q.host,
            "nonce": q.nonce,
            "answer": "yes" if yes else "no",
            "reason": reason,
        },
        sort_keys=True,
    ).encode()
    return body, sign(token, _ANSWER, body)


def read_question(token: str, body: bytes, signature: str | None) -> Question:
    data = _verified(token, _QUESTION, body, signature)
    host, nonce = data.get("host"), data.get("nonce")
    if not isinstance(host, str) or not isinstance(nonce, str) or not host or len(nonce) < 16:
        raise ProtocolError('a failsafe question is {"host": NAME, "nonce": HEX}')
    return Question(host, nonce)


def read_reply(token: str, q: Question, body: bytes, signature: str | None) -> Reply:
    """The controller's answer to `q`; ProtocolError if it is not signed, not for `q`, or malformed."""
    data = _verified(token, _ANSWER, body, signature)
    if data.get("nonce") != q.nonce or data.get("host") != q.host:
        raise ProtocolError("the answer is for another question")
    said, controller, reason = data.get("answer"), data.get("controller"), data.get("reason", "")
    if said not in ("yes", "no") or not isinstance(controller, str) or not isinstance(reason, str):
        raise ProtocolError("a failsafe answer says yes or no, with the controller's name and a reason")
    return Reply(controller, q.host, q.nonce, said == "yes", reason)


def _verified(token: str, label: bytes, body: bytes, signature: str | None) -> dict[str, object]:
    if not signature or not hmac.compare_digest(signature.strip(), sign(token, label, body)):
        raise ProtocolError(f"missing or wrong {HEADER}")
    return json_object(body)


def json_object(body: bytes) -> dict[str, object]:
    """A signed body's JSON object; ProtocolError if it is none."""
    try:
        data = json.loads(body)
    except ValueError as e:
        raise ProtocolError("the body is not JSON") from e
    if not isinstance(data, dict):
        raise ProtocolError("the body must be a JSON object")
    return data
