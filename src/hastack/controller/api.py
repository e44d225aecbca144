"""The controller's HTTP API for operators, HAProxy checks and Prometheus.

GET  /health    200 while the control loop ticks (503 if it has not ticked for 5 ticks' time)
GET  /leader    200 only on the leader (an HAProxy check finds it), else 503
GET  /status    JSON: leader, policy, paused, drained hosts, every network node and its routers
GET  /history   JSON: the ticks that did something, newest last (`?since=UNIX_TIME`: from then on)
GET  /metrics   Prometheus text
     /status, /history and /metrics need `Authorization: Bearer TOKEN` too (they say where every router
     is); /health and /leader do not (load balancers' checks).
POST /pause, /resume, /drain/HOST, /enable/HOST, /policy/NAME, /failsafe/on, /failsafe/off, /rebalance,
     /move (JSON {"router", "node"}) need `Authorization: Bearer TOKEN`; bad requests get 400 and one line
     saying what is wrong.
POST /failsafe  a node agent's failsafe question, signed with the token (failsafe/protocol.py); the
     answer is signed too. A controller without a guarded store answers no.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hastack.backends.base import BackendError
from hastack.controller.guard import GuardedStore
from hastack.controller.metrics import Metrics
from hastack.controller.service import Controller
from hastack.failsafe import protocol
from hastack.store import StoreError


class Api:
    def __init__(
        self,
        controller: Controller,
        metrics: Metrics,
        token: str,
        tick_s: float,
        guard: GuardedStore | None = None,
        open_reads: tuple[str, ...] = (),
    ) -> None:
        self.controller, self.metrics, self.token, self.tick_s = controller, metrics, token, tick_s
        self.guard = guard
        # Reads a load balancer's check may make without the token, and those the inventory opens.
        self.open = ("/health", "/leader", *open_reads)
        self.last_tick = time.monotonic()

    def failsafe(self, body: bytes, signature: str | None) -> tuple[int, Any, dict[str, str]]:
        """A node agent's failsafe question: 403 if not signed with the token, else a signed yes or no."""
        try:
            q = protocol.read_question(self.token, body, signature)
        except protocol.ProtocolError as e:
            return 403, {"error": f"failsafe: {e}"}, {}
        if self.guard is None:
            yes, reason = False, "this controller keeps no failsafe promises"
        else:
            said = self.guard.answer()
            yes, reason = said.yes, said.reason
        if yes:  # one line while it lasts, whichever node agents ask
            self.controller.note("failsafe: etcd unreachable; promised the node agents no binding write")
        reply, signed = protocol.answer(self.token, self.controller.election.name, q, yes, reason)
        return 200, reply, {protocol.HEADER: signed}

    def get(self, path: str, query: dict[str, list[str]] | None = None) -> tuple[int, Any]:
        c = self.controller
        if path == "/health":
            fresh = time.monotonic() - self.last_tick < max(1.0, 5 * self.tick_s)
            return (200, {"ok": True}) if fresh else (503, {"ok": False, "error": "control loop stalled"})
        if path == "/leader":
            leading = c.last.leader
            return (200 if leading else 503), {"leader": leading, "host": c.election.name}
        if path == "/status":
            return 200, c.status()
        if path == "/history":
            since = (query or {}).get("since", ["0"])[-1]
            try:
                after = float(since)
            except ValueError:
                return 400, {"error": f"since={since}: expected a Unix time in seconds"}
            return 200, [e for e in c.history if e["time"] >= after]
        if path == "/metrics":
            return 200, self.metrics.text()
        return 404, {"error": f"no such resource {path}"}

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        c = self.controller
        parts = path.strip("/").split("/")
        try:
            if parts in (["pause"], ["resume"]):
                c.set_control("paused", "true" if parts[0] == "pause" else None)
                return 200, {"done": f"{parts[0]}d"}
            if len(parts) == 2 and parts[0] in ("drain", "enable"):
                c.drain(parts[1], parts[0] == "drain")
                return 200, {"done": f"{parts[0]} {parts[1]}"}
            if len(parts) == 2 and parts[0] == "policy":
                c.set_policy(parts[1])
                return 200, {"done": f"policy {parts[1]}"}
            if len(parts) == 2 and parts[0] == "failsafe" and parts[1] in ("on", "off"):
                c.set_control("failsafe", "off" if parts[1] == "off" else None)
                return 200, {"done": f"failsafe {parts[1]}"}
            if parts == ["rebalance"]:
                return 200, {"done": c.rebalance()}
            if parts == ["move"]:
                router, node = body.get("router"), body.get("node")
                if not isinstance(router, str) or not isinstance(node, str):
                    return 400, {"error": 'move: body must be JSON {"router": ID, "node": HOST}'}
                return 200, {"done": c.move(router, node)}
        except ValueError as e:
            return 400, {"error": str(e)}
        except (StoreError, BackendError) as e:
            return 503, {"error": str(e)}
        return 404, {"error": f"no such action {path}"}

    def authorised(self, header: str | None) -> bool:
        given = (header or "").removeprefix("Bearer ").strip()
        # As bytes: compare_digest refuses a str with non-ASCII characters ("Bearer ü") with a TypeError.
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())


CONNECTION_TIMEOUT_S = 10.0


class _TlsServer(ThreadingHTTPServer):
    """HTTPS, with the handshake in the connection's own thread: a client that connects and says nothing
    must not hold up the accept loop (wrapping the listening socket would handshake there)."""

    def __init__(self, address: tuple[str, int], handler: Any, context: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(CONNECTION_TIMEOUT_S)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # not TLS, or not our CA's idea of it: nothing to answer
        try:
            super().finish_request(conn, client_address)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


def body_length(header: str | None) -> int | None:
    """The request body's length from its Content-Length header; None if it is not one we accept. Pure."""
    text = (header or "0").strip()
    if not text.isascii() or not text.isdigit() or int(text) > 65536:
        return None
    return int(text)


def serve(api: Api, address: str, port: int, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    """Start the server on a thread of its own (HTTPS with `tls`); the caller shuts it down."""

    class Handler(BaseHTTPRequestHandler):
        # A client that connects and then sends nothing (or stops half-way) holds a thread this long at most.
        timeout = CONNECTION_TIMEOUT_S

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path not in api.open and not api.authorised(self.headers.get("Authorization")):
                self._reply(401, {"error": f"GET {path} needs Authorization: Bearer TOKEN"})
                return
            self._reply(*api.get(path, urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)))

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            length = body_length(self.headers.get("Content-Length"))
            if length is None:
                self._reply(400, {"error": "Content-Length must be a whole number from 0 to 65536"})
                return
            if path == protocol.PATH:
                raw = self.rfile.read(length)
                self._reply(*api.failsafe(raw, self.headers.get(protocol.HEADER)))
                return
            if not api.authorised(self.headers.get("Authorization")):
                self._reply(401, {"error": "changes need Authorization: Bearer TOKEN"})
                return
            try:
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            except ValueError:
                self._reply(400, {"error": "the request body is not JSON"})
                return
            if not isinstance(body, dict):
                self._reply(400, {"error": "the request body must be a JSON object"})
                return
            self._reply(*api.post(path, body))

        def _reply(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            kind = "text/plain; version=0.0.4" if isinstance(payload, bytes) else "application/json"
            if headers and protocol.HEADER in headers:
                kind = "application/json"  # a signed failsafe answer: the bytes are JSON
            self.send_response(code)
            self.send_header("Content-Type", kind)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the controller logs what it does; requests are not worth a line each

    server = (
        ThreadingHTTPServer((address, port), Handler)
        if tls is None
        else _TlsServer((address, port), Handler, tls)
    )
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="api", daemon=True).start()
    return server
