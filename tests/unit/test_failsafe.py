"""Failsafe (DESIGN-fencing.md, "Surviving the loss of etcd"): the signed round, the controller's guard
and its promise, and the node agent keeping only open gates open while every controller confirms."""

from __future__ import annotations

import json

import pytest

from hastack.agent.node import NodeAgent
from hastack.backends import LabNetworkBackend
from hastack.controller.guard import GuardedStore
from hastack.failsafe import protocol
from hastack.store import MemoryStore, Put, StoreError, keys
from tests.fakes import Clock
from tests.unit.test_node_agent import FakeGates, FakeRouters

TOKEN = "deployment-token"


# ---- the wire ----


def test_a_signed_answer_is_read_and_a_forged_or_replayed_one_refused() -> None:
    q, body, signature = protocol.question(TOKEN, "net1")
    assert protocol.read_question(TOKEN, body, signature) == q
    with pytest.raises(protocol.ProtocolError):
        protocol.read_question("another-token", body, signature)
    reply, signed = protocol.answer(TOKEN, "ctl1", q, True, "store lost")
    assert protocol.read_reply(TOKEN, q, reply, signed).yes
    with pytest.raises(protocol.ProtocolError, match="wrong"):
        protocol.read_reply(TOKEN, q, reply.replace(b'"yes"', b'"no"'), signed)  # altered
    with pytest.raises(protocol.ProtocolError, match="another question"):
        protocol.read_reply(TOKEN, protocol.question(TOKEN, "net1")[0], reply, signed)  # replayed
    with pytest.raises(protocol.ProtocolError):
        protocol.read_reply(TOKEN, q, body, signature)  # a question passed off as an answer


# ---- the controller's guard ----


class FlakyStore(MemoryStore):
    """The in-memory store, with calls that fail while `down` and a hook run inside each call."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.down = False
        self.during = lambda: None

    def get_prefix(self, prefix: str):  # type: ignore[no-untyped-def]
        self.during()
        if self.down:
            raise StoreError("no quorum")
        return super().get_prefix(prefix)

    def get_prefixes(self, prefixes):  # type: ignore[no-untyped-def]
        self.during()
        if self.down:
            raise StoreError("no quorum")
        return super().get_prefixes(prefixes)

    def txn(self, compares, success, failure=None):  # type: ignore[no-untyped-def]
        self.during()
        if self.down:
            raise StoreError("no quorum")
        return super().txn(compares, success, failure)


def guarded(clock: Clock) -> tuple[GuardedStore, FlakyStore]:
    inner = FlakyStore(clock)
    guard = GuardedStore(inner, lambda k: keys.changes_gates("d", k), 1.0, 0.2, clock)
    return guard, inner


def test_a_controller_that_reaches_the_store_says_no() -> None:
    clock = Clock()
    guard, _inner = guarded(clock)
    guard.get_prefix("/x")
    assert guard.answer().reason == "I reach the store"


def test_a_yes_is_a_promise_no_binding_write_for_one_ttl() -> None:
    clock = Clock()
    guard, inner = guarded(clock)
    clock.now += 2  # past the promise every controller makes by starting
    inner.down = True
    with pytest.raises(StoreError):
        guard.get_prefix("/x")
    assert guard.answer().yes
    inner.down = False  # the store is back at once: the promise still holds
    binding = Put(keys.bindings_prefix("d") + "r1", "net2")
    with pytest.raises(StoreError, match="failsafe: promised no binding write"):
        guard.txn([], [binding])
    guard.txn([], [Put("/hastack/d/controller/leader", "ctl1:1")])  # not a binding: goes through
    clock.now += 1.0
    assert guard.txn([], [binding])


def test_a_write_in_flight_or_of_unknown_outcome_means_no() -> None:
    clock = Clock()
    guard, inner = guarded(clock)
    clock.now += 2
    binding = Put(keys.bindings_prefix("d") + "r1", "net2")
    answers = []
    inner.during = lambda: answers.append(guard.answer())
    guard.txn([], [binding])
    assert answers[-1].reason == "a binding write of mine is in flight"
    inner.during = lambda: None
    inner.down = True
    with pytest.raises(StoreError):
        guard.txn([], [binding])  # timed out: it may still commit
    assert guard.answer().reason == "a binding write of mine has an unknown outcome"
    inner.down = False
    guard.get_prefix("/x")  # a read that started after the failure decides it
    inner.down = True
    with pytest.raises(StoreError):
        guard.get_prefix("/x")
    assert guard.answer().yes


def test_a_call_outstanding_past_the_round_timeout_counts_as_unreachable() -> None:
    clock = Clock()
    guard, inner = guarded(clock)
    clock.now += 2
    answers = []

    def hang() -> None:
        clock.now += 0.3  # the call has hung for 300 ms when the agent asks
        answers.append(guard.answer())

    inner.during = hang
    guard.get_prefix("/x")
    assert answers[0].yes


def test_a_controller_that_starts_promises_for_one_ttl_and_switched_off_says_no() -> None:
    clock = Clock()
    guard, inner = guarded(clock)
    with pytest.raises(StoreError, match="failsafe: promised"):
        guard.txn([], [Put(keys.policy_key("d"), "paper")])  # a restart must not shorten a promise
    inner.down = True
    with pytest.raises(StoreError):
        guard.get_prefix("/x")
    guard.switched_off = True
    assert guard.answer().reason == "failsafe is switched off"


# ---- the node agent ----


class FakePeers:
    """Every controller's answer, as the test sets it; counts the rounds."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.yes, self.rounds, self.takes_s = clock, True, 0, 0.0

    def confirm(self, host: str) -> tuple[bool, str]:
        self.rounds += 1
        self.clock.now += self.takes_s
        return (True, "all 2 controllers confirmed") if self.yes else (False, "ctl2: no, I reach the store")


class Cloud:
    def __init__(self) -> None:
        self.clock = Clock()
        self.store = MemoryStore(self.clock)
        self.backend = LabNetworkBackend(self.store, "d", self.clock, agent_down_s=3.0)
        self.backend.report("net1")
        self.backend.report("net2")
        for r in ("r1", "r2", "r3"):
            self.backend.define_router(r, "{}", "net1")
        self.gates, self.routers = FakeGates(self.clock), FakeRouters("r1", "r2")
        self.peers = FakePeers(self.clock)
        self.agent = self.new_agent()

    def new_agent(self) -> NodeAgent:
        return NodeAgent(
            self.store,
            self.routers,
            self.gates,
            "d",
            "net1",
            1,
            100,
            self.clock,
            self.clock,
            self.peers,
        )


@pytest.fixture
def cloud() -> Cloud:
    return Cloud()


def test_while_every_controller_confirms_the_open_gates_stay_open(cloud: Cloud) -> None:
    cloud.agent.renew(l3_alive=True)
    cloud.store.reachable = False
    for _ in range(20):  # 4 s without the store
        cloud.clock.now += 0.2
        said = cloud.agent.renew(l3_alive=True)
        assert "failsafe: all 2 controllers confirmed" in said
        assert cloud.gates.open() == {"ns-r1", "ns-r2"}
    cloud.peers.takes_s = 0.05
    cloud.clock.now += 0.2
    cloud.agent.renew(l3_alive=True)
    # Counted from the round's send, as from a keepalive: 1000 ms TTL - 100 margin - 50 of round trip.
    assert max(cloud.gates.until.values()) == pytest.approx(cloud.clock.now + 0.85)


def test_one_controller_saying_no_lets_the_gates_run_out(cloud: Cloud) -> None:
    cloud.agent.renew(l3_alive=True)
    cloud.store.reachable = False
    cloud.peers.yes = False
    cloud.clock.now += 0.2
    said = cloud.agent.renew(l3_alive=True)
    assert "failsafe refused (ctl2: no, I reach the store): gates close by themselves in 700 ms" in said
    cloud.clock.now += 0.7
    assert cloud.gates.open() == set()
    cloud.peers.yes = True  # a later yes keeps open only what is open: nothing
    cloud.agent.renew(l3_alive=True)
    assert cloud.gates.open() == set()


def test_failsafe_never_opens_a_gate_that_is_shut(cloud: Cloud) -> None:
    cloud.agent.renew(l3_alive=True)
    cloud.routers.built["r3"] = "ns-r3"  # bound here, built since: would open at the next renewal
    cloud.store.reachable = False
    cloud.clock.now += 0.2
    cloud.agent.renew(l3_alive=True)
    cloud.agent.routers_changed()
    assert cloud.gates.open() == {"ns-r1", "ns-r2"}
    restarted = cloud.new_agent()  # an agent that restarts during the outage holds nothing
    cloud.gates.until.clear()
    assert "gates shut" in restarted.renew(l3_alive=True)
    assert cloud.gates.open() == set()


def test_failsafe_switched_off_or_another_policy_asks_nobody(cloud: Cloud) -> None:
    cloud.store.put(keys.failsafe_key("d"), "off")
    cloud.agent.renew(l3_alive=True)
    cloud.store.reachable = False
    cloud.clock.now += 0.2
    assert "gates close by themselves in 700 ms" in cloud.agent.renew(l3_alive=True)
    assert cloud.peers.rounds == 0


def test_a_node_key_that_cannot_be_written_ends_its_lease(cloud: Cloud) -> None:
    real_txn = cloud.store.txn

    def failing_put(compares, success, failure=None):  # type: ignore[no-untyped-def]
        if any(getattr(op, "key", "") == keys.node_key("d", "net1") for op in success):
            raise StoreError("leader changed")
        return real_txn(compares, success, failure)

    cloud.store.txn = failing_put  # type: ignore[method-assign]
    cloud.peers.yes = False
    said = cloud.agent.renew(l3_alive=True)
    assert said.startswith("store unreachable (leader changed)")
    assert cloud.gates.open() == set()
    assert cloud.agent.lease == 0  # not kept alive without its node key
    cloud.store.txn = real_txn  # type: ignore[method-assign]
    assert cloud.agent.renew(l3_alive=True).startswith("took lease")
    assert json.loads(cloud.store.get(keys.node_key("d", "net1")).value)["lease"] == cloud.agent.lease  # type: ignore[union-attr]


def test_a_keepalive_whose_bindings_read_fails_opens_nothing_on_old_bindings(cloud: Cloud) -> None:
    cloud.agent.renew(l3_alive=True)
    cloud.clock.now += 0.5
    cloud.backend.move_router("r1", "net1", "net2")  # moved away (say, an operator's move)
    real = cloud.backend.bindings

    def unreachable() -> dict[str, str]:
        raise StoreError("read timed out")

    cloud.backend.bindings = unreachable  # type: ignore[method-assign]
    cloud.peers.yes = False
    cloud.agent.renew(l3_alive=True)  # the keepalive went through, the bindings read did not
    cloud.agent.routers_changed()  # a router was built meanwhile: gate again, on the bindings it has
    cloud.clock.now += 0.41
    assert "ns-r1" not in cloud.gates.open()  # its gate was not extended on a read older than that keepalive
    cloud.backend.bindings = real  # type: ignore[method-assign]
