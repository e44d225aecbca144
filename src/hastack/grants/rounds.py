"""The node agent's side of the grants: rounds sent to every controller, grants counted, one deadline.

A round is sent at `t_r` (read before anything is sent) to every controller the inventory names. A grant
counts for the round it answers if its nonce is that round's and the agent's bindings view was read at a
revision at or after the grant's `R_N` (a controller that ended a promise on this node grants only with
the revision of the read that ended it: the node must have seen at least as much). A round with grants
from a majority gives the deadline `t_r + G - m`; grants of different rounds never add up. Pure.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

KEEP = 8  # rounds remembered: a grant for an older round arrives too late to matter (8 x 50 ms > G)


@dataclass
class Round:
    number: int
    sent: float  # t_r, on the agent's monotonic clock, read before the round was sent
    nonce: str
    sent_wall: float = 0.0  # the same moment on the wall clock (the kernel's `meta time`), read first
    granted: set[str] = field(default_factory=set)


class GrantRounds:
    def __init__(
        self,
        controllers: Sequence[str],
        grant_s: float,
        margin_s: float,
        clock: Callable[[], float],
        nonce: Callable[[], str] = lambda: secrets.token_hex(8),
        wall: Callable[[], float] = lambda: 0.0,
    ) -> None:
        if not controllers:
            raise ValueError("grants need at least one controller")
        self.controllers = frozenset(controllers)
        self.majority = len(self.controllers) // 2 + 1
        self.grant_s, self.margin_s, self.clock, self._nonce = grant_s, margin_s, clock, nonce
        self.wall = wall
        self.rounds: list[Round] = []
        self._next = 0
        self._best = (0.0, 0.0)  # the latest deadline a round has given, on both clocks (0: none)

    def begin(self) -> Round:
        """A new round: its time is taken now, before it is sent."""
        self._next += 1
        # The wall clock first: a stall between the two readings can only make its deadline earlier.
        sent_wall = self.wall()
        r = Round(self._next, self.clock(), self._nonce(), sent_wall)
        self.rounds = [*self.rounds[-(KEEP - 1) :], r]
        return r

    def count(self, controller: str, number: int, nonce: str, r_n: int, view_revision: int) -> str | None:
        """Count one grant; why it does not count, or None."""
        if controller not in self.controllers:
            return f"{controller} is not a controller of this deployment"
        r = next((r for r in self.rounds if r.number == number), None)
        if r is None or r.nonce != nonce:
            return f"round {number} is not one of the last {KEEP} sent"
        if view_revision < r_n:
            return f"the bindings here were read at revision {view_revision}, {controller} granted for {r_n}"
        r.granted.add(controller)
        if len(r.granted) >= self.majority and r.sent > self._best[0] - self.grant_s + self.margin_s:
            lasts = self.grant_s - self.margin_s
            self._best = (r.sent + lasts, r.sent_wall + lasts)
        return None

    def deadline(self) -> float:
        """Until when (on the agent's clock) the grants allow its gates open; 0.0 if no round has."""
        return self._best[0]

    def deadline_wall(self) -> float:
        """The same deadline on the wall clock, for the kernel's absolute bound."""
        return self._best[1]
