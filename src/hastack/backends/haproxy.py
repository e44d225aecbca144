"""HAProxy's runtime API, as the controller drives it: which servers a host is, drain, enable, state.

One TCP connection per command (HAProxy's non-interactive mode: it answers and closes). A server is drained
with `set server B/S state drain`: it takes no new connection, finishes the ones it has, and stays
health-checked; `state ready` returns it. Errors become BackendError.
"""

from __future__ import annotations

import csv
import io
import socket
import ssl

from hastack.backends.base import BackendError

FORCED_DRAIN = 0x08  # SRV_ADMF_FDRAIN in srv_admin_state: drained through the runtime API


class HAProxyRuntime:
    """At `address:port` over TCP (TLS with `tls`), or at the Unix socket `address` when `port` is None."""

    def __init__(
        self, address: str, port: int | None, timeout_s: float = 1.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.address, self.port, self.timeout_s, self.tls = address, port, timeout_s, tls

    @property
    def where(self) -> str:
        return self.address if self.port is None else f"{self.address}:{self.port}"

    def _connect(self) -> socket.socket:
        if self.port is not None:
            sock = socket.create_connection((self.address, self.port), timeout=self.timeout_s)
            if self.tls is None:
                return sock
            try:
                return self.tls.wrap_socket(sock, server_hostname=self.address)
            except OSError:  # ssl.SSLError too
                sock.close()
                raise
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout_s)
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        return sock

    def command(self, line: str) -> str:
        try:
            with self._connect() as sock:
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as e:
            raise BackendError(f"HAProxy runtime API at {self.where}: {e}") from e
        return b"".join(chunks).decode(errors="replace")

    def stats(self) -> list[dict[str, str]]:
        """`show stat`, one row per server: pxname, svname, status (UP, DOWN, DRAIN, MAINT...)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return [r for r in rows if r.get("svname") not in ("FRONTEND", "BACKEND", None)]

    def servers(self) -> list[dict[str, str]]:
        """`show servers state`, one row per server: be_name, srv_name, srv_op_state, srv_admin_state.
        The admin state says what operators asked for, whatever the health checks say (`show stat` shows
        a drained server that is down as DOWN)."""
        lines = self.command("show servers state").splitlines()
        header = next((line[1:].split() for line in lines if line.startswith("#")), [])
        rows = [
            dict(zip(header, line.split(), strict=False)) for line in lines[1:] if line and line[0] != "#"
        ]
        return [r for r in rows if "srv_name" in r]

    @staticmethod
    def is_drained(row: dict[str, str]) -> bool:
        return bool(int(row.get("srv_admin_state", "0")) & FORCED_DRAIN)

    def set_state(self, backend: str, server: str, state: str) -> None:
        """`state`: ready, drain or maint."""
        reply = self.command(f"set server {backend}/{server} state {state}").strip()
        if reply:  # success is an empty reply
            raise BackendError(f"HAProxy {self.where}: set server {backend}/{server} state {state}: {reply}")
