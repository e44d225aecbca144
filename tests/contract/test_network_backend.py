"""One behaviour suite for the network backends' Neutron-like semantics (the lab's, on both stores)."""

from __future__ import annotations

import time

import pytest

from hastack.backends import BackendError, LabNetworkBackend
from hastack.store import EtcdStore, MemoryStore
from tests.contract.conftest import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "etcd"])
def setup(request: pytest.FixtureRequest) -> tuple[LabNetworkBackend, Clock]:
    clock = Clock()
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
