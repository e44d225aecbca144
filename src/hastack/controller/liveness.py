"""What the leader learns from the grants (DESIGN-fencing.md): how long each network node has been silent
here, and, for a silent node, the promises of a majority of controllers that a move away from it is
conditioned on."""

from __future__ import annotations

from collections.abc import Sequence

from hastack.grants.udp import GrantServer
from hastack.store import Compare, ValueIs, keys

ASK_TIMEOUT_S = 0.25  # each promise costs one etcd write; one that takes longer is no answer this time


class GrantLiveness:
    def __init__(self, server: GrantServer, deployment: str, silent_s: float) -> None:
        """`silent_s`: G + m, the silence after which a majority may promise (sooner none will)."""
        self.server, self.deployment, self.silent_s = server, deployment, silent_s

    def silent_for(self, host: str) -> float:
        return self.server.granter.silent_for(host)

    def promised(self, host: str) -> tuple[Sequence[Compare] | None, str]:
        """Ask every controller to stop granting `host`: the conditions a move away from it takes (each
        promise key still holding its id), or None; and one phrase saying who promised or why not."""
        promised, refused = self.server.ask(host, ASK_TIMEOUT_S)
        if len(promised) <= len(self.server.peers) // 2:
            why = "; ".join(refused) or "no answer"
            return None, f"{host}: promises from {len(promised)} of {len(self.server.peers)} ({why})"
        key = keys.promise_key
        conditions = [ValueIs(key(self.deployment, host, c), p) for c, p in sorted(promised.items())]
        return conditions, f"{host}: promised by {', '.join(sorted(promised))}"
