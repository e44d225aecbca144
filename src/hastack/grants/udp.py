"""The grants over UDP: a controller answers each node's round at once; a node agent sends its rounds to
every controller and counts what comes back. One datagram each way per controller and round; a lost one
is a grant not counted, never a wait (the next round is `h` later)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping

from hastack.failsafe.protocol import ProtocolError
from hastack.grants import wire
from hastack.grants.granter import Granter
from hastack.grants.rounds import GrantRounds

Address = tuple[str, int]


class GrantServer:
    """A controller's side: answer every signed request with a grant, unless promising."""

    def __init__(self, sock: socket.socket, token: str, name: str, granter: Granter) -> None:
        self.sock, self.token, self.name, self.granter = sock, token, name, granter
        self.refused = 0  # datagrams that were no signed request (counted, never answered)

    def serve_one(self) -> None:
        """Answer one datagram (the socket's timeout bounds the wait)."""
        try:
            datagram, sender = self.sock.recvfrom(wire.MAX_DATAGRAM + 1)
        except TimeoutError:
            return
        try:
            req = wire.read_request(self.token, datagram)
        except ProtocolError:
            self.refused += 1
            return
        r_n = self.granter.on_request(req.host)
        if r_n is not None:
            g = wire.Grant(self.name, req.host, req.round, req.nonce, r_n)
            self.sock.sendto(wire.grant(self.token, g), sender)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.serve_one()


class GrantClient:
    """A node agent's side: one round to every controller, then the grants that arrive."""

    def __init__(
        self,
        sock: socket.socket,
        token: str,
        host: str,
        controllers: Mapping[str, Address],
        rounds: GrantRounds,
        view_revision: Callable[[], int],
    ) -> None:
        self.sock, self.token, self.host, self.controllers = sock, token, host, controllers
        self.rounds, self.view_revision = rounds, view_revision

    def send_round(self) -> int:
        """Send a new round to every controller; its number."""
        r = self.rounds.begin()
        datagram = wire.request(self.token, wire.Request(self.host, r.number, r.nonce))
        for address in self.controllers.values():
            self.sock.sendto(datagram, address)
        return r.number

    def receive(self, for_s: float) -> list[str]:
        """Count the grants that arrive within `for_s`; why each one that did not count did not."""
        refused, end = [], time.monotonic() + for_s
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                datagram, sender = self.sock.recvfrom(wire.MAX_DATAGRAM + 1)
            except TimeoutError:
                break
            try:
                g = wire.read_grant(self.token, datagram)
            except ProtocolError as e:
                refused.append(f"{sender[0]}: {e}")
                continue
            if g.host != self.host or self.controllers.get(g.controller) != sender:
                refused.append(f"{sender[0]}: a grant for {g.host} from {g.controller}, not from its address")
                continue
            why = self.rounds.count(g.controller, g.round, g.nonce, g.r_n, self.view_revision())
            if why is not None:
                refused.append(why)
        return refused
