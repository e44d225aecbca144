"""The coordination store hastack's controller and agents agree through: the interface and its contract.

Backends implement a few primitives; each primitive's docstring is its contract, and one behaviour suite
(tests/contract/test_store.py) holds every backend to it. Every backend raises StoreError, from its cause,
for anything that goes wrong talking to the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass


class StoreError(Exception):
    """The store could not be reached or refused the request."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str
    mod_revision: int
    lease: int  # 0: not bound to a lease


@dataclass(frozen=True)
class Absent:
    """Compare: the key does not exist."""

    key: str


@dataclass(frozen=True)
class ValueIs:
    """Compare: the key exists with exactly this value."""

    key: str
    value: str


@dataclass(frozen=True)
class Put:
    key: str
    value: str
    lease: int = 0


@dataclass(frozen=True)
class Delete:
    key: str


Compare = Absent | ValueIs
Op = Put | Delete


class Store(ABC):
    @abstractmethod
    def get(self, key: str) -> KeyValue | None:
        """The key's current value, or None if it does not exist."""

    @abstractmethod
    def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under `prefix`, sorted by key, and the store revision they were read at."""

    @abstractmethod
    def get_prefixes(self, prefixes: Sequence[str]) -> tuple[list[list[KeyValue]], int]:
        """Every key under each prefix (sorted by key), all read at one revision, and that revision: one
        consistent snapshot, where separate reads could each see a different moment."""

    @abstractmethod
    def txn(self, compares: list[Compare], success: list[Op], failure: list[Op] | None = None) -> bool:
        """Atomically: if every compare holds, apply `success` and return True; else apply `failure` and
        return False. The only way to make a change conditional (compare-and-set, fencing tokens)."""

    @abstractmethod
    def grant(self, ttl_s: int) -> int:
        """A new lease of `ttl_s` seconds; its id. Keys put with it vanish when it expires or is revoked."""

    @abstractmethod
    def keepalive(self, lease: int) -> int:
        """Renew the lease to its full TTL; the TTL granted, or -1 if the lease had already expired."""

    @abstractmethod
    def revoke(self, lease: int) -> None:
        """End the lease now: its keys vanish at once. Revoking an unknown lease is not an error."""

    @abstractmethod
    def wait(self, prefix: str, after_revision: int, timeout_s: float) -> bool:
        """Block until a key under `prefix` changes after `after_revision` (True) or `timeout_s` passes
        (False). Lets a control loop wake on a change instead of at its next tick."""

    # Template methods over the primitives.
    def put(self, key: str, value: str, lease: int = 0) -> None:
        self.txn([], [Put(key, value, lease)])

    def delete(self, key: str) -> None:
        self.txn([], [Delete(key)])

    def create(self, key: str, value: str, lease: int = 0) -> bool:
        """Put `key` only if it does not exist (compare-and-set on absence)."""
        return self.txn([Absent(key)], [Put(key, value, lease)])
