"""The node agent, driven with the in-memory store, fake gates and routers, and a clock of the test's own."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from hastack.agent.daemon import refresh_on_grants
from hastack.agent.gate import GateError
from hastack.agent.node import NodeAgent, plan_gates
from hastack.backends import LabNetworkBackend
from hastack.grants.rounds import GrantRounds
from hastack.store import KeyValue, MemoryStore, keys
from tests.fakes import Clock


class FakeGates:
    """Which gates are open, until when (by the test's clock)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.until: dict[str, float] = {}
        self.gone: set[str] = set()

    def refresh(self, netns: str, timeout_ms: int) -> None:
        if netns in self.gone:
            raise GateError(f"no namespace {netns}")
        self.until[netns] = self.clock() + timeout_ms / 1000

    def close(self, netns: str) -> None:
        self.until.pop(netns, None)

    def refresh_many(self, namespaces: list[str], timeout_ms: int, until_ns: int) -> list[str]:
        self.until_ns = until_ns
        gone = [ns for ns in namespaces if ns in self.gone]
        for ns in namespaces:
            if ns not in gone:
                self.refresh(ns, timeout_ms)
        return gone

    def keep_only(self, namespaces: list[str]) -> None:
        pass

    def exists(self, netns: str) -> bool:
        return netns not in self.gone

    def open(self) -> set[str]:
        return {ns for ns, t in self.until.items() if t > self.clock()}


class FakeRouters:
    def __init__(self, *routers: str) -> None:
        self.built = {r: f"ns-{r}" for r in routers}
        self.removed: list[str] = []
        self.announced: list[str] = []

    def present(self) -> dict[str, str]:
        return dict(self.built)

    def version(self) -> object:
        return tuple(sorted(self.built))

    def remove(self, router: str) -> None:
        self.removed.append(router)
        del self.built[router]

    def opened(self, namespaces: list[str]) -> None:
        self.announced += namespaces


World = tuple[NodeAgent, MemoryStore, LabNetworkBackend, FakeGates, FakeRouters, Clock]


@pytest.fixture
def world() -> World:
    clock = Clock()
    store = MemoryStore(clock)
    backend = LabNetworkBackend(store, "d", clock, agent_down_s=3.0)
    for host in ("net1", "net2"):
        backend.report(host)
    for r in ("r1", "r2", "r3"):
        backend.define_router(r, "{}")
    backend.add_router("r1", "net1")
    backend.add_router("r2", "net1")
    backend.add_router("r3", "net2")
    gates, routers = FakeGates(clock), FakeRouters("r1", "r2", "r3")  # r3 left over from an earlier time
    agent = NodeAgent(store, routers, gates, "d", "net1", ttl_s=1, margin_ms=100, clock=clock, wall=clock)
    return agent, store, backend, gates, routers, clock


def test_plan_opens_only_routers_built_and_bound_here() -> None:
    present = {"r1": "a", "r2": "b", "r3": "c"}
    assert plan_gates(frozenset({"r1", "r3", "r9"}), present, 500).open == ("a", "c")
    assert plan_gates(frozenset({"r1", "r3", "r9"}), present, 500).shut == ("b",)
    assert plan_gates(frozenset({"r1"}), present, None).open == ()  # no time left on the lease: all shut


def test_a_renewal_takes_a_lease_and_opens_bound_gates_until_before_expiry(world: World) -> None:
    agent, store, _backend, gates, _routers, clock = world
    said = agent.renew(l3_alive=True)
    assert said.startswith("took lease")
    assert "2 gates open for 900 ms, 1 shut" in said
    assert store.get(keys.node_key("d", "net1")) is not None
    assert gates.open() == {"ns-r1", "ns-r2"}  # r3 is net2's: never opened here
    clock.now += 0.9  # nobody renews (the agent froze): the gates shut before the lease can expire
    assert gates.open() == set()
    assert store.get(keys.node_key("d", "net1")) is not None


def test_the_gate_counts_from_the_keepalive_send_not_its_reply(world: World) -> None:
    agent, store, _backend, _gates, _routers, clock = world
    agent.renew(l3_alive=True)

    real_keepalive = store.keepalive

    def slow_keepalive(lease: int) -> int:
        ttl = real_keepalive(lease)
        clock.now += 0.6  # the reply took 600 ms
        return ttl

    store.keepalive = slow_keepalive  # type: ignore[method-assign]
    said = agent.renew(l3_alive=True)
    assert "open for 300 ms" in said  # 1000 - 100 margin - 600 of delay


def test_a_lost_lease_shuts_the_gates_before_a_new_one_is_taken(world: World) -> None:
    agent, _store, _backend, _gates, _routers, clock = world
    agent.renew(l3_alive=True)
    old = agent.lease
    clock.now += 5  # the lease ran out in the store
    said = agent.renew(l3_alive=True)
    assert said.startswith("took lease")
    assert agent.lease != old


def test_store_unreachable_refreshes_nothing(world: World) -> None:
    agent, store, _backend, gates, _routers, clock = world
    agent.renew(l3_alive=True)
    store.keepalive = _raise  # type: ignore[method-assign]
    store.get = _raise  # type: ignore[method-assign]
    clock.now += 0.5
    said = agent.renew(l3_alive=True)
    assert said.startswith("store unreachable")
    assert "close by themselves in 400 ms" in said
    clock.now += 0.45
    assert gates.open() == set()


def _raise(*_args: object) -> object:
    from hastack.store import StoreError

    raise StoreError("etcd down")


def test_l3_agent_death_shuts_revokes_and_cleans_up(world: World) -> None:
    agent, store, _backend, gates, routers, _clock = world
    agent.renew(l3_alive=True)
    said = agent.on_l3_death_under_policy()
    assert said == "L3 agent died: 3 gates shut, lease revoked, removed 3 routers"
    assert gates.open() == set()
    assert store.get(keys.node_key("d", "net1")) is None  # the controller sees it at once
    assert routers.removed == ["r1", "r2", "r3"]
    assert agent.renew(l3_alive=False).startswith("no L3 agent running: holding no lease")


def test_policy_neutron_fences_nothing(world: World) -> None:
    agent, store, backend, gates, routers, clock = world
    store.put(keys.policy_key("d"), "neutron")
    agent.renew(l3_alive=True)
    assert store.get(keys.node_key("d", "net1")) is None
    assert gates.open() == {"ns-r1", "ns-r2"}  # r3 is bound elsewhere and never forwarded here
    assert agent.on_l3_death_under_policy().endswith("routers left in place")
    backend.move_router("r1", "net1", "net2")  # Neutron's rescheduling, a minute later
    agent.renew(l3_alive=False)
    clock.now += 60
    assert gates.open() == {"ns-r1", "ns-r2"}  # r1 forwarded here: it goes on beside its successor
    assert routers.removed == []


def test_a_restarted_agent_keeps_the_lease_its_predecessor_held(world: World) -> None:
    agent, store, _backend, gates, routers, clock = world
    agent.renew(l3_alive=True)
    again = NodeAgent(store, routers, gates, "d", "net1", ttl_s=1, margin_ms=100, clock=clock, wall=clock)
    assert again.adopt()
    assert again.lease == agent.lease
    assert again.renew(l3_alive=True).startswith("renewed lease")


def test_a_router_built_between_renewals_opens_at_once(world: World) -> None:
    agent, _store, backend, gates, routers, _clock = world
    agent.renew(l3_alive=True)
    assert routers.announced == ["ns-r1", "ns-r2"]  # opened: the router host may announce them
    backend.remove_router("r3", "net2")
    backend.add_router("r3", "net1")  # moved here; the L3 agent had it built already
    assert agent.routers_changed() == "1 gates opened, 0 shut, of 3 routers here"  # only r3's changed
    assert gates.open() == {"ns-r1", "ns-r2", "ns-r3"}
    assert routers.announced == ["ns-r1", "ns-r2", "ns-r3"]  # kept open gates are not announced again
    backend.remove_router("r2", "net1")
    assert agent.routers_changed() == "0 gates opened, 1 shut, of 3 routers here"
    assert gates.open() == {"ns-r1", "ns-r3"}
    assert agent.routers_changed() == "0 gates opened, 0 shut, of 3 routers here"
    assert agent.gate().startswith("2 gates open for")  # a renewal refreshes every open gate
    gates.gone.add("ns-r1")  # deleted between the listing and the refresh
    assert agent.gate().endswith("1 gone meanwhile")


def test_a_refresh_that_stalled_past_half_the_margin_is_shut_again(world: World) -> None:
    agent, _store, _backend, _gates, _routers, clock = world

    class StallingGates(FakeGates):
        def refresh_many(self, namespaces: list[str], timeout_ms: int, until_ns: int) -> list[str]:
            gone = super().refresh_many(namespaces, timeout_ms, until_ns)
            clock.now += 0.06  # frozen for 60 ms between reading the clock and the kernel's update
            return gone

    agent.gates = StallingGates(clock)
    said = agent.renew(l3_alive=True)
    assert "0 gates open" in said
    assert "2 shut again after a stall" in said
    assert agent.gates.open() == set()


def test_a_refresh_that_stalled_once_is_done_again_with_a_fresh_timeout(world: World) -> None:
    agent, _store, _backend, _gates, _routers, clock = world

    class StallingOnce(FakeGates):
        calls = 0

        def refresh_many(self, namespaces: list[str], timeout_ms: int, until_ns: int) -> list[str]:
            gone = super().refresh_many(namespaces, timeout_ms, until_ns)
            self.calls += 1
            if self.calls == 1:
                clock.now += 0.06  # one 60 ms stall, then the retry goes through
            return gone

    agent.gates = StallingOnce(clock)
    said = agent.renew(l3_alive=True)
    assert said.endswith("2 gates open for 900 ms, 1 shut")
    assert agent.gates.open() == {"ns-r1", "ns-r2"}
    assert max(agent.gates.until.values()) <= agent.open_until  # the retry's timeout replaced the stale one


def test_sd_notify_never_blocks_on_a_supervisor_that_does_not_read(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import socket

    from hastack.agent.watch import sd_notify

    path = tmp_path / "notify"
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    deaf.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    sent = [sd_notify("WATCHDOG=1") for _ in range(5000)]  # far more than the queue holds
    assert sent[0] is True
    assert sent[-1] is False  # dropped, not blocked
    deaf.close()


def test_a_change_of_the_bindings_wakes_the_agent(world: World) -> None:
    import threading

    from hastack.agent.daemon import watch_bindings

    _agent, store, backend, _gates, _routers, _clock = world
    wake, stop = threading.Event(), threading.Event()
    prefix = keys.bindings_prefix(backend.deployment)
    watcher = threading.Thread(target=watch_bindings, args=(store, prefix, wake, stop))
    watcher.start()
    try:
        assert wake.wait(2)  # the first read
        wake.clear()
        backend.move_router("r3", "net2", "net1")
        assert wake.wait(2)
    finally:
        stop.set()
        watcher.join(5)
    assert not watcher.is_alive()


def test_a_gate_that_cannot_be_shut_keeps_the_lease_from_being_revoked(world: World) -> None:
    agent, store, _backend, gates, _routers, _clock = world
    agent.renew(l3_alive=True)

    def refuse(netns: str) -> None:
        raise GateError(f"gate of {netns}: nf_tables refused the gate's change: Cannot allocate memory")

    gates.close = refuse  # type: ignore[method-assign]
    said = agent.on_l3_death_under_policy()
    assert "lease left to run out: 3 gate(s) could not be shut" in said
    # Revoked, the node key would vanish now and the routers move while a gate here is still open.
    assert store.get(keys.node_key("d", "net1")) is not None
    assert agent.renew(l3_alive=False).startswith("no L3 agent running")
    assert store.get(keys.node_key("d", "net1")) is not None  # not revoked by the next renewal either


class CountingStore(MemoryStore):
    """The in-memory store, noting each call a renewal makes (each is a round trip to etcd)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.calls: list[str] = []

    def keepalive(self, lease: int) -> int:
        self.calls.append("keepalive")
        return super().keepalive(lease)

    def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        self.calls.append("get_prefix")
        return super().get_prefix(prefix)

    def get_prefixes(self, prefixes: Sequence[str]) -> tuple[list[list[KeyValue]], int]:
        self.calls.append("get_prefixes")
        return super().get_prefixes(prefixes)


def test_a_renewal_of_a_lease_held_is_two_round_trips_the_bindings_read_after_the_keepalive() -> None:
    """A store slow under load costs the gates less the fewer calls each heartbeat makes (the fault
    campaign saw an agent lose its gates for want of answers at 150 ms per call, three calls a renewal)."""
    clock = Clock()
    store = CountingStore(clock)
    backend = LabNetworkBackend(store, "d", clock, agent_down_s=3.0)
    backend.report("net1")
    for r in ("r1", "r2"):
        backend.define_router(r, "{}")
    backend.add_router("r1", "net1")
    gates, routers = FakeGates(clock), FakeRouters("r1", "r2")
    agent = NodeAgent(store, routers, gates, "d", "net1", ttl_s=1, margin_ms=100, clock=clock, wall=clock)
    assert agent.renew(l3_alive=True).startswith("took lease")
    clock.now += 0.2
    backend.add_router("r2", "net1")
    store.calls.clear()
    assert agent.renew(l3_alive=True).startswith("renewed lease")
    assert store.calls == ["keepalive", "get_prefixes"]
    assert gates.open() == {"ns-r1", "ns-r2"}  # r2, bound since the last renewal, opens with this one


def test_a_failing_renewal_leaves_time_for_a_failsafe_round_and_ends_before_the_watchdog() -> None:
    from pathlib import Path

    from hastack.agent.node import RENEWAL_CALLS
    from hastack.cli.daemons import agent_store_timeout_s
    from hastack.model import load_deployment
    from hastack.render.systemd import watchdog_ms

    dep = load_deployment(Path(__file__).parents[2] / "examples" / "paper.yaml")
    t, members = dep.inventory.timing, len(dep.hosts_of("etcd"))
    timeout_s, beat_s = agent_store_timeout_s(dep), t.heartbeat_interval_ms / 1000
    # A keepalive a heartbeat after the last good one, failing on every member, then a failsafe round:
    # all before the gates' deadline (a timeout of 217 ms let every gate run out while etcd re-elected).
    assert beat_s + members * timeout_s + beat_s <= t.lease_ttl_s - t.fence_margin_ms / 1000
    worst_s = RENEWAL_CALLS * members * timeout_s + beat_s  # every call failing, and a failsafe round
    assert worst_s <= watchdog_ms(dep, "hastack-agent") / 1000 - 0.5


def _granted_agent(world: World) -> tuple[NodeAgent, GrantRounds]:
    _agent, store, _backend, gates, routers, clock = world
    rounds = GrantRounds(("ctl1", "ctl2", "ctl3"), 0.25, 0.05, clock, nonce=lambda: "n", wall=clock)
    granted = NodeAgent(
        store, routers, gates, "d", "net1", ttl_s=1, margin_ms=100, clock=clock, wall=clock, grants=rounds
    )
    return granted, rounds


def test_with_grants_on_a_gate_opens_only_on_a_majority_and_until_the_earlier_deadline(world: World) -> None:
    _agent, _store, _backend, gates, _routers, clock = world
    agent, rounds = _granted_agent(world)
    assert "0 gates open" in agent.renew(l3_alive=True)  # the lease alone opens nothing
    assert gates.open() == set()
    r = rounds.begin()
    rounds.count("ctl1", r.number, r.nonce, 0, agent.bound_revision)
    assert not agent.grants_renewed()  # one of three
    rounds.count("ctl2", r.number, r.nonce, 0, agent.bound_revision)
    assert agent.grants_renewed()
    assert agent.gate() == "2 gates open for 200 ms, 1 shut"  # the grants' 250 - 50, not the lease's 900
    assert gates.until_ns == int((r.sent_wall + 0.2) * 1e9)  # the kernel's absolute bound follows too
    assert not agent.grants_renewed()
    clock.now += 0.2  # no later round gathered a majority: the gates ran out, the lease lives on
    assert gates.open() == set()
    assert store_has_node_key(world)


def test_with_grants_on_a_grant_that_wants_a_later_bindings_read_does_not_count(world: World) -> None:
    agent, rounds = _granted_agent(world)
    agent.renew(l3_alive=True)
    r = rounds.begin()
    later = agent.bound_revision + 1  # a controller ended a promise with a read after this node's read
    assert rounds.count("ctl1", r.number, r.nonce, later, agent.bound_revision) is not None
    rounds.count("ctl2", r.number, r.nonce, 0, agent.bound_revision)
    assert not agent.grants_renewed()


def store_has_node_key(world: World) -> bool:
    return world[1].get(keys.node_key("d", "net1")) is not None


def test_the_agent_says_which_read_its_gates_follow_once_they_follow_it(world: World) -> None:
    agent, store, backend, gates, _routers, _clock = world
    agent.renew(l3_alive=True)
    assert agent.applied_revision == agent.bound_revision > 0
    backend.remove_router("r1", "net1")  # a live move unbinds r1 from here
    unbound_at = store.get_prefix(keys.bindings_prefix("d"))[1]
    assert agent.applied_revision < unbound_at
    agent.routers_changed()
    assert agent.applied_revision >= unbound_at  # what the controllers hear in the next round...
    assert "ns-r1" not in gates.open()  # ...is true: r1's gate is shut by then
    store.put(keys.policy_key("d"), "paper")
    agent.renew(l3_alive=True)
    assert agent.applied_revision == 0  # the anchors keep open what forwarded: no word


def test_with_grants_the_gates_are_refreshed_once_half_of_their_time_has_passed_not_every_round(
    world: World,
) -> None:
    clock = world[5]
    agent, rounds = _granted_agent(world)
    agent.renew(l3_alive=True)

    def granted_round() -> None:
        r = rounds.begin()
        for c in ("ctl1", "ctl2"):
            rounds.count(c, r.number, r.nonce, 0, agent.bound_revision)

    granted_round()
    assert agent.grants_renewed()
    agent.gate()
    clock.now += 0.05
    granted_round()  # a later deadline, but 150 of the 200 ms the last refresh allowed are left
    assert not agent.grants_renewed()
    clock.now += 0.06
    assert agent.grants_renewed()  # 90 ms left: refresh with the later round's deadline
    assert agent.gate() == "2 gates open for 140 ms, 1 shut"


class StalledStore(MemoryStore):
    """A store whose keepalive waits until the test lets it go (an etcd leader being re-elected)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.stalled, self.waiting, self.go = False, threading.Event(), threading.Event()

    def keepalive(self, lease: int) -> int:
        if self.stalled:
            self.waiting.set()
            self.go.wait(10)
        return super().keepalive(lease)


def _stalled_world() -> tuple[NodeAgent, StalledStore, GrantRounds, FakeGates, Clock]:
    clock = Clock()
    store = StalledStore(clock)
    backend = LabNetworkBackend(store, "d", clock, agent_down_s=3.0)
    backend.report("net1")
    backend.define_router("r1", "{}", "net1")
    gates = FakeGates(clock)
    rounds = GrantRounds(("ctl1", "ctl2", "ctl3"), 0.25, 0.05, clock, nonce=lambda: "n", wall=clock)
    agent = NodeAgent(
        store,
        FakeRouters("r1"),
        gates,
        "d",
        "net1",
        ttl_s=1,
        margin_ms=100,
        clock=clock,
        wall=clock,
        grants=rounds,
    )
    return agent, store, rounds, gates, clock


def _grant(agent: NodeAgent, rounds: GrantRounds) -> None:
    r = rounds.begin()
    for c in ("ctl1", "ctl2"):
        rounds.count(c, r.number, r.nonce, 0, agent.bound_revision)


def test_a_renewal_waiting_on_etcd_does_not_hold_up_the_gates_refresh_on_grants() -> None:
    agent, store, rounds, gates, clock = _stalled_world()
    agent.renew(l3_alive=True)
    _grant(agent, rounds)
    agent.gate()
    assert gates.open() == {"ns-r1"}
    store.stalled = True
    renewal = threading.Thread(target=agent.renew, args=(True,))
    renewal.start()
    assert store.waiting.wait(5)  # the renewal waits on etcd from now on
    stop = threading.Event()
    refresher = threading.Thread(target=refresh_on_grants, args=(agent, stop))
    refresher.start()
    try:
        for _ in range(5):  # 0.75 s of granted rounds while the renewal waits (the lease allows 0.9 s)
            clock.now += 0.15  # 50 ms left of what the last refresh allowed: a refresh is due
            _grant(agent, rounds)
            deadline = time.monotonic() + 5
            while agent.granted_until != rounds.deadline() and time.monotonic() < deadline:
                time.sleep(0.005)
            assert gates.open() == {"ns-r1"}  # refreshed on the grants, not shut by the wait
    finally:
        stop.set()
        store.go.set()
        renewal.join(5)
        refresher.join(5)


def test_a_renewal_the_l3_agents_death_overtook_applies_nothing() -> None:
    agent, store, rounds, gates, _clock = _stalled_world()
    agent.renew(l3_alive=True)
    _grant(agent, rounds)
    agent.gate()
    store.stalled = True
    said: list[str] = []
    renewal = threading.Thread(target=lambda: said.append(agent.renew(True)))
    renewal.start()
    assert store.waiting.wait(5)
    assert agent.on_l3_death(cleanup=False).startswith("L3 agent died: 1 gates shut")
    store.go.set()
    renewal.join(5)
    assert said == ["the L3 agent died during the renewal: nothing applied"]
    assert gates.open() == set()
