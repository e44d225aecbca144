"""What a controller learns from the grants (DESIGN-fencing.md): how long each network node has been silent
here, and, for a silent node, the promises of a majority of controllers that a move away from it is
conditioned on; and from its peers' beats, whether a majority has heard nothing from the leader."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from hastack.grants.beats import Beats, holder
from hastack.grants.udp import GrantServer
from hastack.grants.wire import Beat
from hastack.store import Absent, Compare, Store, StoreError, ValueIs, keys

ASK_TIMEOUT_S = 0.25  # each promise costs one etcd write; one that takes longer is no answer this time
RELEASE_POLL_S = 0.01


class Liveness(Protocol):
    """The grants, as a controller's tick uses them (GrantLiveness; a fake of it in the unit tests)."""

    silent_s: float

    def silent_for(self, host: str) -> float: ...

    def promised(self, host: str) -> tuple[Sequence[Compare] | None, str]: ...

    def leader_silent(self, term: str) -> tuple[bool, str]: ...

    def next_suspicion_s(self, term: str) -> float: ...

    def released(self, host: str, revision: int) -> bool: ...


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

    def released(self, host: str, revision: int) -> bool:
        """Whether `host` last said its gates follow a bindings read at `revision` or later."""
        return self.server.granter.released(host, revision)

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


def away(
    sources: set[str],
    node_keys: frozenset[str],
    deployment: str,
    liveness: Liveness | None,
    silent_s: float,
) -> tuple[dict[str, Sequence[Compare]], dict[str, str]]:
    """What makes a move away from each failed source safe: its node key staying absent (its lease is
    gone) or, for a node silent to the grants, the promises of a majority of controllers, asked now. A
    silent node without them keeps its routers this tick (source -> why). Any other source (an agent
    disabled by the operator) is moved live (`hold`)."""
    conditions: dict[str, Sequence[Compare]] = {}
    left_out: dict[str, str] = {}
    for source in sorted(sources):
        if source not in node_keys:
            conditions[source] = [Absent(keys.node_key(deployment, source))]
        elif liveness is not None and liveness.silent_for(source) >= silent_s:
            promised, said = liveness.promised(source)
            if promised is None:
                left_out[source] = f"not moving the routers of {said}"
            else:
                conditions[source] = promised
    return conditions, left_out


def hold(store: Store, deployment: str, releases: Liveness | None, source: str, ttl_s: float) -> None:
    """After a router was unbound from `source`, which still holds its lease: return once its gate is
    shut for sure. One lease TTL at most (every gate opened from an earlier read has run out by then);
    with grants on, as soon as `source` says its gates follow a bindings read made after the unbinding
    (a revision read here after it), which it says in every round."""
    end = time.monotonic() + ttl_s
    if releases is not None:
        try:
            (_bindings,), revision = store.get_prefixes([keys.bindings_prefix(deployment)])
        except StoreError:
            revision = 0
        while revision and time.monotonic() < end:
            if releases.released(source, revision):
                return
            time.sleep(RELEASE_POLL_S)
    time.sleep(max(0.0, end - time.monotonic()))
