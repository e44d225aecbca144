"""What differs between the lab and a real OpenStack, for the controller: the network backend interface.

Semantics follow Neutron's L3 agent scheduler API (`l3-agent-router-remove` / `l3-agent-router-add`):
a router is hosted by at most one agent; adding it to an agent while another hosts it is an error.
Every backend raises BackendError, from its cause.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


class BackendError(Exception):
    """The network backend could not do what was asked."""


@dataclass(frozen=True)
class Agent:
    host: str
    alive: bool  # reported within the backend's agent-down time
    admin_up: bool


class NetworkBackend(ABC):
    @abstractmethod
    def list_agents(self) -> list[Agent]:
        """Every L3 agent the backend knows, alive or not."""

    @abstractmethod
    def routers_by_agent(self) -> dict[str, list[str]]:
        """Router ids hosted by each agent's host (agents hosting none map to [])."""

    @abstractmethod
    def remove_router(self, router: str, host: str) -> None:
        """Stop hosting `router` on `host`; BackendError if `host` does not host it."""

    @abstractmethod
    def add_router(self, router: str, host: str) -> None:
        """Host `router` on `host`; BackendError if another agent hosts it or `host` has no agent."""
