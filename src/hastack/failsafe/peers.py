"""The node agent's failsafe round: ask every controller at once, succeed only if every one says yes.

The controllers are the inventory's, never a list read from the store (that is what is missing when a
round runs). A round is bounded by `timeout_s`: a controller that has not answered by then counts as a
no, and so does one whose answer is not signed with the deployment's token or not for this round.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import requests

from hastack.failsafe import protocol


@dataclass(frozen=True)
class Peer:
    name: str
    url: str  # the controller's API, e.g. http://10.240.0.21:7480


class ControllerPeers:
    def __init__(self, peers: Sequence[Peer], token: str, timeout_s: float, ca: Path | None = None) -> None:
        """`ca`: the CA that issued the controllers' certificates, for their https:// URLs."""
        if not peers:
            raise ValueError("failsafe needs at least one controller")
        self.peers, self.token, self.timeout_s = tuple(peers), token, timeout_s
        # Not the environment's CA bundle or proxies: a round goes straight to the controllers.
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.verify = str(ca) if ca is not None else True
        self._pool = ThreadPoolExecutor(max_workers=2 * len(self.peers), thread_name_prefix="failsafe")

    def confirm(self, host: str) -> tuple[bool, str]:
        """One round from `host`: (every controller said yes, one phrase saying who said what)."""
        q, body, signature = protocol.question(self.token, host)
        futures = {self._pool.submit(self._ask, p, q, body, signature): p for p in self.peers}
        done, _late = wait(futures, timeout=self.timeout_s)
        noes = []
        for future, peer in futures.items():
            if future not in done:
                noes.append(f"{peer.name}: no answer within {self.timeout_s * 1000:.0f} ms")
            elif not (reply := future.result())[0]:
                noes.append(f"{peer.name}: {reply[1]}")
        if noes:
            return False, "; ".join(noes)
        return True, f"all {len(self.peers)} controllers confirmed"

    def _ask(self, peer: Peer, q: protocol.Question, body: bytes, signature: str) -> tuple[bool, str]:
        try:
            resp = self._session.post(
                peer.url + protocol.PATH,
                data=body,
                headers={protocol.HEADER: signature, "Content-Type": "application/json"},
                timeout=self.timeout_s,
            )
            reply = protocol.read_reply(self.token, q, resp.content, resp.headers.get(protocol.HEADER))
        except requests.RequestException as e:
            return False, f"unreachable ({type(e).__name__})"
        except protocol.ProtocolError as e:
            return False, f"refused its answer: {e}"
        return reply.yes, "yes" if reply.yes else f"no, {reply.reason}"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
