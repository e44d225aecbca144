"""HAProxy's runtime API, as the controller drives it: which servers a host is, drain, enable, state.

One TCP connection per command (HAProxy's non-interactive mode: it answers and closes). A server is drained
with `set server B/S state drain`: it takes no new connection, finishes the ones it has, and stays
health-checked; `state ready` returns it. Errors become BackendError.
"""

from __future__ import annotations

import csv
import io
import socket

from hastack.backends.base import BackendError


class HAProxyRuntime:
    def __init__(self, address: str, port: int, timeout_s: float = 1.0) -> None:
        self.address, self.port, self.timeout_s = address, port, timeout_s

    def command(self, line: str) -> str:
        try:
            with socket.create_connection((self.address, self.port), timeout=self.timeout_s) as sock:
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as e:
            raise BackendError(f"HAProxy runtime API at {self.address}:{self.port}: {e}") from e
        return b"".join(chunks).decode(errors="replace")

    def servers(self) -> list[dict[str, str]]:
        """One row per server: backend (pxname), server (svname), status (UP, DOWN, DRAIN, MAINT...)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return [r for r in rows if r.get("svname") not in ("FRONTEND", "BACKEND", None)]

    def set_state(self, backend: str, server: str, state: str) -> None:
        """`state`: ready, drain or maint."""
        reply = self.command(f"set server {backend}/{server} state {state}").strip()
        if reply:  # success is an empty reply
            raise BackendError(
                f"HAProxy {self.address}: set server {backend}/{server} state {state}: {reply}"
            )
