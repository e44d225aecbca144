"""The grants over UDP: a controller answers each node's round at once; a node agent sends its rounds to
every controller and counts what comes back. One datagram each way per controller and round; a lost one
is a grant not counted, never a wait (the next round is `h` later). The leader asks every controller,
itself included, for a promise on the same socket; a promise is answered once its key is written."""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping

from hastack.failsafe.protocol import ProtocolError
from hastack.grants import wire
from hastack.grants.granter import Granter
from hastack.grants.rounds import GrantRounds
from hastack.store import StoreError

Address = tuple[str, int]
log = logging.getLogger("hastack.grants")


class GrantServer:
    """A controller's side: answer every signed round with a grant, unless promising; promise when a
    controller asks (`write` commits the promise's key before the answer goes out); and, for the leader,
    collect the promises of every controller (`ask`)."""

    def __init__(
        self,
        sock: socket.socket,
        token: str,
        name: str,
        granter: Granter,
        write: Callable[[str, str], None] = lambda _host, _promise: None,
        peers: Mapping[str, Address] | None = None,
        on_beat: Callable[[wire.Beat], None] = lambda _beat: None,
    ) -> None:
        """`peers`: every controller's grant address, this one's included (who may ask for promises, and
        whose beats count); `on_beat`: where a peer's beat goes (grants/beats.py)."""
        self.sock, self.token, self.name, self.granter, self.write = sock, token, name, granter, write
        self.peers, self.on_beat = dict(peers or {}), on_beat
        self.refused = 0  # datagrams that were no signed message of ours (counted, never answered)
        self._asked: dict[str, queue.Queue[wire.Promise]] = {}  # nonce -> the answers to one `ask`
        self._prefix = secrets.token_hex(4)  # promise ids are unique across this controller's restarts

    def serve_one(self) -> None:
        """Answer one datagram (the socket's timeout bounds the wait)."""
        try:
            datagram, sender = self.sock.recvfrom(wire.MAX_DATAGRAM + 1)
        except TimeoutError:
            return
        try:
            kind = wire.kind(datagram, self.token)
            if kind == "request":
                self._grant(wire.read_request(self.token, datagram), sender)
            elif kind == "silent":
                ask = wire.read_silent(self.token, datagram)
                if self.peers.get(ask.leader) != sender:
                    raise ProtocolError(f"a promise request from {ask.leader}, not from its address")
                self._promise(ask, sender)
            elif kind == "beat":
                beat = wire.read_beat(self.token, datagram)
                if self.peers.get(beat.controller) != sender:
                    raise ProtocolError(f"a beat from {beat.controller}, not from its address")
                self.on_beat(beat)
            elif kind == "promise":
                answer = wire.read_promise(self.token, datagram)
                if self.peers.get(answer.controller) != sender:
                    raise ProtocolError(f"a promise from {answer.controller}, not from its address")
                if (waiting := self._asked.get(answer.nonce)) is not None:
                    waiting.put(answer)
            else:
                self.refused += 1
        except ProtocolError:
            self.refused += 1
        except OSError as e:  # an answer that cannot be sent (the network is down here): a lost datagram
            log.debug("grant answer not sent: %s", e)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.serve_one()
            except Exception:  # a thread that dies silently would stop every grant of this controller
                log.exception("grant server: answering a datagram failed; going on")
                stop.wait(0.01)

    def _grant(self, req: wire.Request, sender: Address) -> None:
        r_n = self.granter.on_request(req.host, req.applied)
        if r_n is not None:
            g = wire.Grant(self.name, req.host, req.round, req.nonce, r_n)
            self.sock.sendto(wire.grant(self.token, g), sender)

    def _promise(self, ask: wire.Silent, sender: Address) -> None:
        promise = self.granter.begin_promise(ask.host, f"{self.name}-{self._prefix}")
        if promise is None:
            refused = f"granted {ask.host} {self.granter.granted_ago(ask.host) * 1000:.0f} ms ago"
            answer = wire.Promise(self.name, ask.host, ask.nonce, "", refused)
            self.sock.sendto(wire.promise(self.token, answer), sender)
            return
        threading.Thread(
            target=self._write_then_answer, args=(ask, promise, sender), name="promise", daemon=True
        ).start()

    def _write_then_answer(self, ask: wire.Silent, promise: str, sender: Address) -> None:
        # The store write takes a round trip to etcd: not on the thread that answers the rounds.
        try:
            self.write(ask.host, promise)
            answer = wire.Promise(self.name, ask.host, ask.nonce, promise)
        except StoreError as e:
            # Outcome unknown: the promise stays outstanding (no grant) until its keeper ends it.
            answer = wire.Promise(self.name, ask.host, ask.nonce, "", f"promise not written: {e}")
        with contextlib.suppress(OSError):
            self.sock.sendto(wire.promise(self.token, answer), sender)

    def beat(self, beat: wire.Beat) -> None:
        """Send this controller's beat to every peer (one that cannot be sent is a lost beat)."""
        datagram = wire.beat(self.token, beat)
        for name, address in self.peers.items():
            if name != self.name:
                with contextlib.suppress(OSError):
                    self.sock.sendto(datagram, address)

    def ask(self, host: str, timeout_s: float) -> tuple[dict[str, str], list[str]]:
        """Ask every controller to promise to grant `host` nothing more; within `timeout_s`, once a
        majority has promised: controller -> promise id, and why the others did not promise."""
        nonce, answers = secrets.token_hex(8), queue.Queue[wire.Promise]()
        self._asked[nonce] = answers
        promised: dict[str, str] = {}
        refused: dict[str, str] = {}
        try:
            datagram = wire.silent(self.token, wire.Silent(self.name, host, nonce))
            for address in self.peers.values():
                with contextlib.suppress(OSError):
                    self.sock.sendto(datagram, address)
            end, majority = time.monotonic() + timeout_s, len(self.peers) // 2 + 1
            while len(promised) < majority and (left := end - time.monotonic()) > 0:
                try:
                    a = answers.get(timeout=left)
                except queue.Empty:
                    break
                if a.host == host:
                    if a.promise:
                        promised[a.controller] = a.promise
                    else:
                        refused[a.controller] = a.refused
        finally:
            del self._asked[nonce]
        silent = [c for c in self.peers if c not in promised and c not in refused]
        said = [f"{c}: {why}" for c, why in sorted(refused.items())] + [f"{c}: no answer" for c in silent]
        return promised, said


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
        applied: Callable[[], int] = lambda: 0,
    ) -> None:
        """`view_revision`: the revision of the node's bindings view; `applied`: the revision its gates
        were last applied from (a controller waiting to bind elsewhere a router it unbound here)."""
        self.sock, self.token, self.host, self.controllers = sock, token, host, controllers
        self.rounds, self.view_revision, self.applied = rounds, view_revision, applied

    def send_round(self) -> int:
        """Send a new round to every controller (one it cannot be sent to counts as lost); its number."""
        r = self.rounds.begin()
        datagram = wire.request(self.token, wire.Request(self.host, r.number, r.nonce, self.applied()))
        for address in self.controllers.values():
            with contextlib.suppress(OSError):  # no route to it (this node is cut off): no grant from it
                self.sock.sendto(datagram, address)
        return r.number

    def run(self, interval_s: float, stop: threading.Event) -> None:
        """A round every `interval_s`, and between two rounds the grants that come back."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.send_round()
                self.receive(max(0.0, started + interval_s - time.monotonic()))
            except Exception:  # a thread that dies silently would let every gate here run out for good
                log.exception("grant rounds: a round failed; going on")
                stop.wait(interval_s)

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
