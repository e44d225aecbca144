"""What a controller learns from the grants (DESIGN-fencing.md): how long each network node has been silent
here, and, for a silent node, the promises of a majority of controllers that a move away from it is
conditioned on; and from its peers' beats, whether a majority has heard nothing from the leader."""

from __future__ import annotations

from collections.abc import Sequence

from hastack.grants.beats import Beats, holder
from hastack.grants.udp import GrantServer
from hastack.grants.wire import Beat
from hastack.store import Compare, ValueIs, keys

ASK_TIMEOUT_S = 0.25  # each promise costs one etcd write; one that takes longer is no answer this time


class GrantLiveness:
    def __init__(self, server: GrantServer, beats: Beats, deployment: str, silent_s: float) -> None:
        """`silent_s`: G + m, the silence after which a majority may promise (sooner none will)."""
        self.server, self.beats, self.deployment, self.silent_s = server, beats, deployment, silent_s

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

    def leader_silent(self, term: str) -> tuple[bool, str]:
        """Whether a majority of controllers, this one included, has heard nothing from the leader of
        `term` for the suspicion time; one phrase saying who."""
        agreed, who = self.beats.majority_suspects(term)
        if not agreed:
            return False, ""
        silent_ms = self.beats.silent_for(term) * 1000
        return True, f"{who} heard nothing from {holder(term)} for {silent_ms:.0f} ms"

    def next_suspicion_s(self, term: str) -> float:
        return self.beats.next_suspicion_s(term)

    def beat(self, term: str, healthy: bool) -> None:
        """Tell every peer which term this controller sees, whether it suspects that leader, and whether
        it reaches the store."""
        self.server.beat(Beat(self.server.name, term, self.beats.suspects(term), healthy))
