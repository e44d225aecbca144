"""Takeover by a majority (DESIGN-fencing.md): what a controller hears of its peers' beats, and whether a
majority of controllers, itself included, has heard nothing from the leader for the suspicion time.

A leader that is heard, but says it cannot reach the store, counts as silent. A controller that has just
started counts its start as a beat from everyone: it suspects no one before the suspicion time has passed.
Pure: the beats arrive and leave elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hastack.grants.wire import Beat


@dataclass(frozen=True)
class Heard:
    at: float  # when the beat arrived, on this controller's monotonic clock
    beat: Beat


def holder(token: str) -> str:
    """The controller a leader token names (`NAME:LEASE`)."""
    return token.rpartition(":")[0]


class Beats:
    def __init__(self, name: str, peers: Sequence[str], suspect_s: float, clock: Callable[[], float]) -> None:
        self.name, self.peers, self.suspect_s, self.clock = name, tuple(peers), suspect_s, clock
        self.majority = len(self.peers) // 2 + 1
        self.started = clock()
        self.heard: dict[str, Heard] = {}
        self.last_healthy: dict[str, float] = {}  # controller -> when it was last heard reaching the store
        self.lock = threading.Lock()  # beats arrive on the grant thread; the tick and the sender read

    def on_beat(self, beat: Beat) -> None:
        with self.lock:
            now = self.clock()
            self.heard[beat.controller] = Heard(now, beat)
            if beat.healthy:
                self.last_healthy[beat.controller] = now

    def silent_for(self, token: str) -> float:
        """Seconds since this controller last heard the holder of `token` healthy (or started)."""
        with self.lock:
            return self.clock() - self.last_healthy.get(holder(token), self.started)

    def suspects(self, token: str) -> bool:
        return bool(token) and holder(token) != self.name and self.silent_for(token) >= self.suspect_s

    def majority_suspects(self, token: str) -> tuple[bool, str]:
        """Whether a majority of controllers, this one included, suspects the leader of term `token`
        (each peer's beat counted while it is fresher than the suspicion time); who does."""
        if not self.suspects(token):
            return False, ""
        now = self.clock()
        with self.lock:
            agree = [
                c
                for c, h in self.heard.items()
                if c not in (self.name, holder(token))
                and now - h.at < self.suspect_s
                and h.beat.leader == token
                and h.beat.suspects
            ]
        if len(agree) + 1 < self.majority:
            return False, ""
        return True, ", ".join(sorted([self.name, *agree]))

    def next_suspicion_s(self, token: str) -> float:
        """Seconds until this controller would suspect the leader of `token` (0: it does)."""
        if not token or holder(token) == self.name:
            return float("inf")
        return max(0.0, self.suspect_s - self.silent_for(token))
