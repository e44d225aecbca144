"""The network backend contract (network_backend_suite.py) for the lab's backend on the in-memory store and
on etcd, and what only it can show: heartbeats aged by the test's clock, a store that fails."""

from __future__ import annotations

import time

import pytest

from hastack.backends import BackendError, LabNetworkBackend
from hastack.store import EtcdStore, MemoryStore, ValueIs, keys
from tests.contract.conftest import free_port
from tests.contract.network_backend_suite import *  # noqa: F403 (the contract's tests run here)
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


class LabSubject:
    """The lab's backend as the contract's subject: routers r1-r3 defined, agents on net1 and net2."""

    unknown_router = "r9"
    bulk = 150  # more than one transaction's worth

    def __init__(self, backend: LabNetworkBackend) -> None:
        self.backend, self.store = backend, backend.store
        self.condition_key = keys.node_key(backend.deployment, "net1")
        self.made = 0

    def placement(self) -> dict[str, str]:
        return self.backend.bindings()

    def hosted(self) -> tuple[str, str, str]:
        if "r1" not in self.backend.bindings():
            self.backend.add_router("r1", "net1")
        source = self.backend.bindings()["r1"]
        return "r1", source, "net2" if source == "net1" else "net1"

    def routers_on(self, host: str, count: int) -> list[str]:
        made = [f"m{self.made + i:03d}" for i in range(count)]
        for router in made:
            self.backend.define_router(router, "{}", host)
        self.made += count
        return made


@pytest.fixture
def subject(setup: tuple[LabNetworkBackend, Clock]) -> LabSubject:
    return LabSubject(setup[0])


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


def test_store_failure_becomes_backend_error() -> None:
    backend = LabNetworkBackend(EtcdStore([f"127.0.0.1:{free_port()}"], timeout_s=0.5), "t", Clock(), 2.0)
    with pytest.raises(BackendError, match="lab network service"):
        backend.list_agents()


def test_remove_then_add_moves_a_router(setup: tuple[LabNetworkBackend, Clock]) -> None:
    backend, _clock = setup
    backend.add_router("r3", "net1")
    with pytest.raises(BackendError, match="not hosted by net2"):
        backend.remove_router("r3", "net2")
    backend.remove_router("r3", "net1")
    backend.add_router("r3", "net2")
    assert backend.routers_by_agent() == {"net1": [], "net2": ["r3"]}


def test_a_stale_leader_cannot_add(setup: tuple[LabNetworkBackend, Clock]) -> None:
    backend, _clock = setup
    leader = keys.leader_key(backend.deployment)
    backend.store.put(leader, "ctl2:7")  # another term leads now
    with pytest.raises(BackendError, match="not added to net1"):
        backend.add_router("r2", "net1", only_if=[ValueIs(leader, "ctl1:5")])
    backend.add_router("r2", "net1", only_if=[ValueIs(leader, "ctl2:7")])
    assert backend.bindings() == {"r2": "net1"}
