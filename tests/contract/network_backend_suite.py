"""The network backend contract, defined once: what every NetworkBackend must do, whatever it drives.

A test module runs it by providing a `subject` fixture (a `Subject`) and importing these tests: the lab's
backend on the in-memory store and on etcd (tests/contract/test_network_backend.py), Neutron in the
OpenStack lab (tests/lab_openstack/test_neutron_backend.py). What only one backend can show (heartbeats
aged by a test clock, Neutron moving routers by itself) stays beside its own subject.
"""

from __future__ import annotations

from typing import Protocol

import pytest

from hastack.backends import BackendError, NetworkBackend
from hastack.store import Absent, Store, ValueIs

UNKNOWN_HOST = "net9"


class Subject(Protocol):
    """A backend under test, with the means to put it in the state a test starts from."""

    backend: NetworkBackend
    store: Store  # where the move's conditions are checked
    condition_key: str  # a key only these tests write
    unknown_router: str
    bulk: int  # how many routers `test_many_routers_move_each_with_its_own_answer` moves at once

    def placement(self) -> dict[str, str]:
        """router -> the host serving it, once the backend has settled."""
        ...

    def hosted(self) -> tuple[str, str, str]:
        """A router served by one network node, that node, and another network node."""
        ...

    def routers_on(self, host: str, count: int) -> list[str]:
        """`count` routers served by `host` (put there if need be)."""
        ...


def test_a_router_is_hosted_by_one_agent_at_most(subject: Subject) -> None:
    router, source, target = subject.hosted()
    with pytest.raises(BackendError, match="hosted"):
        subject.backend.add_router(router, target)
    with pytest.raises(BackendError, match=f"router {router} is not hosted by {target}"):
        subject.backend.remove_router(router, target)
    hosted = [r for rs in subject.backend.routers_by_agent().values() for r in rs]
    assert len(hosted) == len(set(hosted))  # none twice
    assert set(hosted) <= set(subject.backend.routers())
    assert subject.placement()[router] == source


def test_unknown_agent_or_router_is_refused(subject: Subject) -> None:
    router, source, _target = subject.hosted()
    with pytest.raises(BackendError, match=f"no L3 agent on {UNKNOWN_HOST}"):
        subject.backend.add_router(router, UNKNOWN_HOST)
    with pytest.raises(BackendError, match=f"no router {subject.unknown_router}"):
        subject.backend.add_router(subject.unknown_router, source)


def test_a_move_happens_only_if_its_conditions_hold_then_moves_and_back(subject: Subject) -> None:
    router, source, target = subject.hosted()
    key = subject.condition_key
    subject.store.put(key, "alive")  # as the source's node key still there: the move must not happen
    try:
        with pytest.raises(BackendError, match=f"stays on {source}: a condition of the move failed"):
            subject.backend.move_router(router, source, target, only_if=[Absent(key)])
        assert subject.placement()[router] == source
    finally:
        subject.store.delete(key)
    subject.backend.move_router(router, source, target, only_if=[Absent(key)])
    assert subject.placement()[router] == target
    with pytest.raises(BackendError, match=f"not hosted by {source}"):
        subject.backend.move_router(router, source, target)
    subject.backend.move_router(router, target, source)
    assert subject.placement()[router] == source


def test_a_stale_leader_cannot_move_or_remove(subject: Subject) -> None:
    router, source, target = subject.hosted()
    key = subject.condition_key
    subject.store.put(key, "ctl2:7")  # another term leads now
    try:
        stale = [ValueIs(key, "ctl1:5")]
        with pytest.raises(BackendError, match=f"stays on {source}"):
            subject.backend.move_router(router, source, target, only_if=stale)
        with pytest.raises(BackendError, match=f"stays on {source}"):
            subject.backend.remove_router(router, source, only_if=stale)
        assert subject.placement()[router] == source
        subject.backend.move_router(router, source, target, only_if=[ValueIs(key, "ctl2:7")])
        assert subject.placement()[router] == target
    finally:
        subject.store.delete(key)
    subject.backend.move_router(router, target, source)


def test_many_routers_move_each_with_its_own_answer(subject: Subject) -> None:
    _router, source, target = subject.hosted()
    elsewhere = subject.routers_on(target, 1)[0]
    mine = subject.routers_on(source, subject.bulk)
    key = subject.condition_key
    # One router elsewhere: only it is refused (the lab's batch falls back to one by one for it).
    done = subject.backend.move_routers([*mine, elsewhere], source, target, only_if=[Absent(key)])
    assert done == {**dict.fromkeys(mine, None), elsewhere: f"router {elsewhere} is not hosted by {source}"}
    placement = subject.placement()
    assert all(placement[r] == target for r in mine)
    subject.store.put(key, "back")  # as the source returned: nothing moves
    try:
        refused = subject.backend.move_routers(mine[:3], target, source, only_if=[Absent(key)])
        why = "a condition of the move failed"
        assert refused == {r: f"router {r} stays on {target}: {why}" for r in mine[:3]}
    finally:
        subject.store.delete(key)
    assert subject.backend.move_routers(mine, target, source) == dict.fromkeys(mine, None)
    assert subject.backend.move_routers(mine, source, UNKNOWN_HOST) == dict.fromkeys(
        mine, f"no L3 agent on {UNKNOWN_HOST}"
    )
