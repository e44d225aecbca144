"""What differs between the lab and a real OpenStack, for the controller: the network backend interface.

Semantics follow Neutron's L3 agent scheduler API (`l3-agent-router-remove` / `l3-agent-router-add`):
a router is hosted by at most one agent; adding it to an agent while another hosts it is an error.
Every backend raises BackendError, from its cause.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from hastack.store import Compare


class BackendError(Exception):
    """The network backend could not do what was asked."""


@dataclass(frozen=True)
class Agent:
    host: str
    alive: bool  # reported within the backend's agent-down time
    admin_up: bool


class NetworkBackend(ABC):
    # True for a backend that moves routers by itself under policy `neutron` (a real Neutron with
    # allow_automatic_l3agent_failover); the lab's backend has its Neutron emulated by the controller.
    schedules_itself = False
    # True for a backend whose moves are store transactions checked against the leader's fencing token:
    # a deposed leader's move cannot land after its successor's election, so the successor need not wait
    # for it. A backend whose state lives elsewhere (Neutron) checks the token before each call.
    moves_fenced = False

    @abstractmethod
    def list_agents(self) -> list[Agent]:
        """Every L3 agent the backend knows, alive or not."""

    @abstractmethod
    def routers(self) -> list[str]:
        """Every router id, hosted or not."""

    @abstractmethod
    def routers_by_agent(self) -> dict[str, list[str]]:
        """Router ids hosted by each agent's host (agents hosting none map to [])."""

    @abstractmethod
    def remove_router(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        """Stop hosting `router` on `host`; BackendError if `host` does not host it.

        `only_if`: store conditions (the leader's fencing token, "the node's lease is gone") that must hold
        when the change is made, else BackendError and nothing changes. A backend whose state lives in the
        store checks them in the same transaction; one whose state lives elsewhere (Neutron) checks them
        right before the call, which leaves a window docs/operator-guide.md states."""

    @abstractmethod
    def add_router(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        """Host `router` on `host`; BackendError if another agent hosts it, `host` has no agent, or an
        `only_if` condition does not hold."""

    def reconcile(self, only_if: Sequence[Compare] = (), follow_backend: bool = False) -> str:
        """Bring what the backend runs in line with the store's record of bindings (the leader's, every
        few seconds), or with `follow_backend` the record in line with what the backend runs; a sentence
        saying what changed, "" if nothing did. A backend whose state is the store itself (the lab's) has
        nothing to do."""
        return ""

    def move_router(self, router: str, source: str, target: str, only_if: Sequence[Compare] = ()) -> None:
        """Remove from `source`, then add to `target`. A backend that can do both at once overrides this:
        a mover that dies between the two steps would leave the router hosted by nobody."""
        self.remove_router(router, source, only_if)
        self.add_router(router, target, only_if)

    def move_routers(
        self, routers: Sequence[str], source: str, target: str, only_if: Sequence[Compare] = ()
    ) -> dict[str, str | None]:
        """Move many routers from `source` to `target`, each as `move_router` would; per router None
        (moved) or why not. A backend that can move many at once overrides this (a node that fails with
        a thousand routers must not cost a thousand round trips)."""
        done: dict[str, str | None] = {}
        for router in routers:
            try:
                self.move_router(router, source, target, only_if)
                done[router] = None
            except BackendError as e:
                done[router] = str(e)
        return done


class RecordMoves(NetworkBackend):
    """A backend whose bulk move changes the record of bindings in transactions, each router all or
    nothing (record.py): one move is a bulk move of one, in one step."""

    def move_router(self, router: str, source: str, target: str, only_if: Sequence[Compare] = ()) -> None:
        """One transaction: the binding goes from `source` to `target` or stays where it is."""
        error = self.move_routers([router], source, target, only_if)[router]
        if error is not None:
            raise BackendError(error)

    @abstractmethod
    def move_routers(
        self, routers: Sequence[str], source: str, target: str, only_if: Sequence[Compare] = ()
    ) -> dict[str, str | None]: ...
