"""One behaviour suite for the network backends' Neutron-like semantics (the lab's, on both stores)."""

from __future__ import annotations

import time

import pytest

from hastack.backends import BackendError, LabNetworkBackend
from hastack.store import Absent, EtcdStore, MemoryStore, ValueIs, keys
from tests.contract.conftest import free_port
from tests.fakes import Clock


@pytest.fixture(params=["memory", "etcd"])
def setup(request: pytest.FixtureRequest) -> tuple[LabNetworkBackend, Clock]:
    clock = Clock(5000.0)
    store = (
        MemoryStore(clock)
        if request.param == "memory"
        else EtcdStore([request.getfixturevalue("etcd_endpoint")])
    )
    backend = LabNetworkBackend(store, f"t{time.time_ns()}", clock, agent_down_s=2.0)
    for host in ("net1", "net2"):
        backend.report(host)
    for router in ("r1", "r2", "r3"):
        backend.define_router(router, "{}")
    return backend, clock


def test_agents_are_alive_by_heartbeat_age(setup: tuple[LabNetworkBackend, Clock]) -> None:
    backend, clock = setup
    assert {(a.host, a.alive, a.admin_up) for a in backend.list_agents()} == {
        ("net1", True, True),
        ("net2", True, True),
    }
    clock.now += 3
    backend.report("net2", admin_up=False)
    assert {(a.host, a.alive, a.admin_up) for a in backend.list_agents()} == {
        ("net1", False, True),
        ("net2", True, False),
    }


def test_a_router_is_hosted_by_one_agent_at_most(setup: tuple[LabNetworkBackend, Clock]) -> None:
    backend, _clock = setup
    backend.add_router("r1", "net1")
    backend.add_router("r2", "net1")
    with pytest.raises(BackendError, match="already hosted by net1"):
        backend.add_router("r1", "net2")
    assert backend.routers_by_agent() == {"net1": ["r1", "r2"], "net2": []}


def test_remove_then_add_moves_a_router(setup: tuple[LabNetworkBackend, Clock]) -> None:
    backend, _clock = setup
    backend.add_router("r3", "net1")
    with pytest.raises(BackendError, match="not hosted by net2"):
        backend.remove_router("r3", "net2")
    backend.remove_router("r3", "net1")
    backend.add_router("r3", "net2")
    assert backend.routers_by_agent() == {"net1": [], "net2": ["r3"]}


def test_unknown_agent_or_router_is_refused(setup: tuple[LabNetworkBackend, Clock]) -> None:
    backend, _clock = setup
    with pytest.raises(BackendError, match="no L3 agent on net9"):
        backend.add_router("r1", "net9")
    with pytest.raises(BackendError, match="no router r9"):
        backend.add_router("r9", "net1")


def test_store_failure_becomes_backend_error() -> None:
    backend = LabNetworkBackend(EtcdStore([f"127.0.0.1:{free_port()}"], timeout_s=0.5), "t", Clock(), 2.0)
    with pytest.raises(BackendError, match="lab network service"):
        backend.list_agents()


def test_a_move_is_one_step_and_holds_only_if_its_conditions_do(
    setup: tuple[LabNetworkBackend, Clock],
) -> None:
    backend, _clock = setup
    backend.add_router("r1", "net1")
    node_key = keys.node_key(backend.deployment, "net1")
    backend.store.put(node_key, "alive")  # the source's node key is still there: the move must not happen
    with pytest.raises(BackendError, match="stays on net1: a condition of the move failed"):
        backend.move_router("r1", "net1", "net2", only_if=[Absent(node_key)])
    assert backend.bindings() == {"r1": "net1"}
    backend.store.delete(node_key)
    backend.move_router("r1", "net1", "net2", only_if=[Absent(node_key)])
    assert backend.bindings() == {"r1": "net2"}
    with pytest.raises(BackendError, match="not hosted by net1"):
        backend.move_router("r1", "net1", "net2")


def test_a_stale_leader_cannot_move_add_or_remove(setup: tuple[LabNetworkBackend, Clock]) -> None:
    backend, _clock = setup
    leader = keys.leader_key(backend.deployment)
    backend.store.put(leader, "ctl2:7")  # another term leads now
    stale = [ValueIs(leader, "ctl1:5")]
    with pytest.raises(BackendError, match="not added to net1"):
        backend.add_router("r2", "net1", only_if=stale)
    backend.add_router("r2", "net1", only_if=[ValueIs(leader, "ctl2:7")])
    with pytest.raises(BackendError, match="stays on net1"):
        backend.remove_router("r2", "net1", only_if=stale)
    assert backend.bindings() == {"r2": "net1"}


def test_many_routers_move_in_bulk_each_with_its_own_answer(setup: tuple[LabNetworkBackend, Clock]) -> None:
    backend, _clock = setup
    many = [f"m{i:03d}" for i in range(150)]  # more than one transaction's worth
    for router in many:
        backend.define_router(router, "{}", "net1")
    backend.add_router("r1", "net2")
    node_key = keys.node_key(backend.deployment, "net1")
    # One router elsewhere: its batch falls back to one by one, and only it is refused.
    done = backend.move_routers([*many, "r1"], "net1", "net2", only_if=[Absent(node_key)])
    assert [r for r, error in done.items() if error is None] == many
    assert done["r1"] == "router r1 is not hosted by net1"
    assert backend.routers_by_agent()["net2"] == sorted([*many, "r1"])
    backend.store.put(node_key, "back")  # the source returned: nothing moves
    refused = backend.move_routers(many[:3], "net2", "net1", only_if=[Absent(node_key)])
    assert set(refused.values()) == {
        f"router {r} stays on net2: a condition of the move failed" for r in many[:3]
    }
    assert backend.move_routers(["m000"], "net2", "net9") == {"m000": "no L3 agent on net9"}
