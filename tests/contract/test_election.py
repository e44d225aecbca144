"""Leader election and fencing on every store backend (in-memory, and a real etcd on loopback)."""

from __future__ import annotations

import time

import pytest

from hastack.controller.election import Election
from hastack.store import Put
from tests.contract.conftest import Backend


@pytest.fixture
def key() -> str:
    return f"/test/{time.time_ns()}/leader"


def _elections(backend: Backend, key: str) -> tuple[Election, Election]:
    clock = time.monotonic
    return (Election(backend.store, key, "ctl1", 1, clock), Election(backend.store, key, "ctl2", 1, clock))


def test_one_leader_at_a_time(backend: Backend, key: str) -> None:
    a, b = _elections(backend, key)
    assert a.step() is True
    assert b.step() is False
    assert a.step() is True  # renewing keeps it
    assert b.step() is False


def test_a_leader_that_stops_renewing_loses_the_key_and_its_writes_are_fenced(
    backend: Backend, key: str
) -> None:
    a, b = _elections(backend, key)
    assert a.step() is True
    stale = a.fence()
    backend.advance(2.5)  # a's lease (1 s) expires: etcd drops the key, the memory store on its clock
    assert b.step() is True
    assert backend.store.txn([stale], [Put(key + "-move", "by a")]) is False
    assert backend.store.txn([b.fence()], [Put(key + "-move", "by b")]) is True
    assert a.step() is False
    assert a.leader_for_s() == 0.0


def test_resign_hands_over_at_once(backend: Backend, key: str) -> None:
    a, b = _elections(backend, key)
    assert a.step() is True
    a.resign()
    assert b.step() is True
