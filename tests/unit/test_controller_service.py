"""The controller's tick and its operator API, on the in-memory store with a clock of the test's own."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hastack import pki
from hastack.backends import LabNetworkBackend
from hastack.controller import act
from hastack.controller.api import Api, serve
from hastack.controller.decide import Move
from hastack.controller.election import Election
from hastack.controller.metrics import Metrics
from hastack.controller.service import Controller, Settings
from hastack.pki import Layout
from hastack.pki.contexts import client_context, server_context
from hastack.store import Absent, Compare, MemoryStore, ValueIs, keys
from tests.fakes import Clock

TOKEN = "secret-token-1"


class FakeBalancer:
    def __init__(self) -> None:
        self.state = {("keystone", "ctl1"): "UP", ("keystone", "ctl2"): "UP"}

    def servers(self) -> list[dict[str, str]]:
        return [{"be_name": b, "srv_name": s, "status": st} for (b, s), st in self.state.items()]

    def is_drained(self, row: dict[str, str]) -> bool:
        return row["status"] == "DRAIN"

    def set_state(self, backend: str, server: str, state: str) -> None:
        self.state[(backend, server)] = {"drain": "DRAIN", "ready": "UP"}[state]


SETTLING = (
    "settling for 0.0 s (started, store back, new policy or a failsafe promise): "
    "waiting one lease TTL before moving routers"
)


class World:
    def __init__(self, backend: type[LabNetworkBackend] = LabNetworkBackend) -> None:
        self.clock = Clock()
        self.store = MemoryStore(self.clock)
        self.backend = backend(self.store, "d", self.clock, agent_down_s=3.0)
        self.lb = FakeBalancer()
        for r in ("r1", "r2", "r3", "r4"):
            self.backend.define_router(r, "{}")
        self.leases = {}
        for host in ("net1", "net2", "net3"):
            self.alive(host)
        for r, host in (("r1", "net1"), ("r2", "net1"), ("r3", "net2"), ("r4", "net3")):
            self.backend.add_router(r, host)

    def alive(self, host: str) -> None:
        self.backend.report(host)
        lease = self.store.grant(1)
        self.leases[host] = lease
        self.store.put(keys.node_key("d", host), "{}", lease=lease)

    def advance(self, seconds: float, *controllers: Controller) -> None:
        """Let time pass as it does in a healthy lab: agents report and renew, controllers tick."""
        for _ in range(int(seconds / 0.25)):
            self.clock.now += 0.25
            for host, lease in self.leases.items():
                if self.store.keepalive(lease) > 0:
                    self.backend.report(host)
            for c in controllers:
                settled(c)

    def controller(self, name: str) -> Controller:
        settings = Settings(
            "d", ("net1", "net2", "net3"), 1.0, 0.1, {"ctl1": ["keystone"], "ctl2": ["keystone"]}
        )
        election = Election(self.store, keys.leader_key("d"), name, 1, self.clock)
        return Controller(
            self.store, self.backend, election, [self.lb], settings, self.clock, Metrics(), self.clock
        )


@pytest.fixture
def w() -> World:
    return World()


def test_the_leader_moves_a_dead_nodes_routers_after_one_ttl(w: World) -> None:
    ctl = w.controller("ctl1")
    w.store.revoke(w.leases["net3"])
    assert ctl.tick() == SETTLING
    w.alive("net3")
    w.advance(5, ctl)  # healthy for a while: every node is a target
    assert ctl.tick() == "all 3 network nodes healthy"
    w.store.revoke(w.leases["net1"])  # the node agent of net1 saw its L3 agent die
    said = ctl.tick()
    assert said.startswith(
        "moving 2 routers of net1 (lease gone) to healthy agents: net2 now 2, net3 now 2: 2 of 2 moved"
    )
    assert w.backend.routers_by_agent()["net1"] == []
    assert [m["router"] for m in ctl.history[-1]["moves"]] == ["r1", "r2"]
    assert ctl.tick() == "1 failed node(s) host no router"


def test_a_standby_moves_nothing(w: World) -> None:
    leader, standby = w.controller("ctl1"), w.controller("ctl2")
    leader.tick()
    w.advance(5, leader, standby)
    w.store.revoke(w.leases["net1"])
    assert standby.tick() == "standby: another controller leads"
    assert w.backend.routers_by_agent()["net1"] == ["r1", "r2"]


def test_a_standby_that_takes_over_moves_a_dead_nodes_routers_at_once(w: World) -> None:
    # The leader dies with an L3 agent: its successor has watched for long enough, the node's gates ran
    # out with its lease, and the deposed leader's moves can no longer land. Waiting one more TTL after
    # the election only lengthened the outage.
    leader, standby = w.controller("ctl1"), w.controller("ctl2")
    leader.tick()
    w.advance(5, leader, standby)
    w.store.revoke(w.leases.pop("net1"))
    w.store.delete(keys.leader_key("d"))  # the leader's lease ran out
    said = standby.tick()
    assert said.startswith("moving 2 routers of net1 (lease gone) to healthy agents"), said
    assert w.backend.routers_by_agent()["net1"] == []


def test_a_stale_leaders_moves_fail_on_the_fencing_token(w: World) -> None:
    ctl = w.controller("ctl1")
    ctl.tick()
    w.store.put(keys.leader_key("d"), "ctl9:1")  # another term took over meanwhile
    w.store.revoke(w.leases["net1"])
    out = act.apply(
        w.backend,
        [Move("r1", "net1", "net2")],
        [ctl.election.fence()],
        {"net1": [Absent(keys.node_key("d", "net1"))]},
        lambda _source: None,
        4,
    )
    assert out[0].error is not None
    assert "condition" in out[0].error
    assert w.backend.bindings()["r1"] == "net1"


def test_an_unhosted_router_is_placed_once_a_read_begun_since_lists_it(w: World) -> None:
    ctl = w.controller("ctl1")
    w.advance(5, ctl)
    w.backend.remove_router("r4", "net3")  # a move cut short between its two steps
    assert ctl.tick() == "all 3 network nodes healthy"  # it may have been deleted: read them first
    w.advance(0.5, ctl)
    assert any("moving 1 unhosted routers" in t["sentence"] for t in ctl.history)
    assert "r4" in w.backend.routers_by_agent()["net3"]


def test_a_router_deleted_since_the_last_read_of_the_definitions_is_not_placed(w: World) -> None:
    ctl = w.controller("ctl1")
    w.advance(5, ctl)  # the definitions were read: r4 among them
    w.backend.forget_router("r4")  # deleted with its binding, less than 5 s after that read
    w.advance(1, ctl)
    assert settled(ctl) == "all 3 network nodes healthy"
    assert "r4" not in ctl.definitions.routers
    assert not any("unhosted" in t["sentence"] for t in ctl.history)  # never tried to place it


class FrozenDefinitions(LabNetworkBackend):
    """A network service that answers `list routers` nothing until `thaw` is set (a busy Neutron)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.thaw, self.asked = threading.Event(), threading.Event()

    def routers(self) -> list[str]:
        self.asked.set()
        self.thaw.wait(30)
        return super().routers()


def test_a_network_service_slow_to_list_its_routers_does_not_hold_up_the_leaders_tick(w: World) -> None:
    """The tick renews the leader's lease: on Neutron it waited for `list routers`, seconds when busy."""
    ctl = w.controller("ctl1")
    w.advance(5, ctl)
    frozen = FrozenDefinitions(w.store, "d", w.clock, 3.0)
    ctl.definitions.read = frozen.routers
    w.clock.now += 5
    ticked = threading.Thread(target=ctl.tick)
    ticked.start()
    assert frozen.asked.wait(5)
    ticked.join(5)
    assert not ticked.is_alive()  # the tick returned while the list is still being read
    frozen.thaw.set()


def settled(ctl: Controller) -> str:
    """A tick, and the read of the router definitions it started, to its end (a thread in production)."""
    said = ctl.tick()
    if ctl.definitions.thread is not None:
        ctl.definitions.thread.join(5)
    return said


def test_api_answers_reads_and_guards_changes(w: World) -> None:
    ctl = w.controller("ctl1")
    ctl.tick()
    api = Api(ctl, ctl.metrics, TOKEN, 0.1)
    assert api.get("/leader")[0] == 200
    assert api.get("/status")[1]["nodes"][0]["routers"] == ["r1", "r2"]
    assert b"hastack_controller_ticks_total" in api.get("/metrics")[1]
    assert not api.authorised("Bearer wrong")
    assert not api.authorised(None)
    assert not api.authorised("Bearer ü")  # was a TypeError, and a dropped connection
    assert api.authorised(f"Bearer {TOKEN}")
    assert api.post("/policy/bogus", {}) == (
        400,
        {"error": "unknown policy 'bogus': one of hastack, paper, neutron"},
    )
    assert api.post("/move", {"router": 5})[0] == 400
    assert api.post("/pause", {})[0] == 200
    assert ctl.tick() == "paused by the operator: moving nothing"
    everything = api.get("/history")[1]
    assert len(everything) >= 2
    later = api.get("/history", {"since": [str(everything[-1]["time"])]})[1]
    assert later == everything[-1:]  # what it did from then on
    assert api.get("/history", {"since": ["yesterday"]}) == (
        400,
        {"error": "since=yesterday: expected a Unix time in seconds"},
    )
    standby = Api(w.controller("ctl2"), Metrics(), TOKEN, 0.1)
    standby.controller.tick()
    assert standby.get("/leader")[0] == 503


def test_the_api_serves_https_and_wants_the_token_for_everything_but_health_checks(
    w: World, tmp_path: Path
) -> None:
    files = Layout(tmp_path)
    pki.ensure("d", [("ctl1", "127.0.0.1")], files)
    ctl = w.controller("ctl1")
    ctl.tick()
    server = serve(Api(ctl, ctl.metrics, TOKEN, 0.1), "127.0.0.1", 0, server_context(files, "ctl1"))
    port = server.server_address[1]
    base, trust = f"https://127.0.0.1:{port}", client_context(files.ca)

    def call(path: str, token: str | None = None, data: bytes | None = None) -> int:
        req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=5, context=trust) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as e:
            return e.code

    try:
        assert call("/health") == 200
        assert call("/leader") == 200
        assert [call(p) for p in ("/status", "/history", "/metrics")] == [401, 401, 401]
        assert [call(p, TOKEN) for p in ("/status", "/history", "/metrics")] == [200, 200, 200]
        assert call("/pause", data=b"{}") == 401
        assert call("/pause", "wrong-token", b"{}") == 401
        assert call("/pause", TOKEN, b"{}") == 200
        paused = w.store.get(keys.paused_key("d"))
        assert paused is not None
        assert paused.value == "true"
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP gets no answer
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        with socket.create_connection(("127.0.0.1", port)):  # a client that says nothing
            assert call("/health") == 200  # holds no one up
    finally:
        server.shutdown()
    opened = serve(Api(ctl, ctl.metrics, TOKEN, 0.1, None, ("/metrics",)), "127.0.0.1", 0, None)
    try:  # the inventory may open a read: Prometheus without a token
        base = f"http://127.0.0.1:{opened.server_address[1]}"
        assert [call(p) for p in ("/metrics", "/status", "/history")] == [200, 401, 401]
    finally:
        opened.shutdown()


def test_the_paper_policy_checks_every_40_s(w: World) -> None:
    ctl = w.controller("ctl1")
    w.advance(5, ctl)
    ctl.set_policy("paper")
    w.advance(2, ctl)  # a new policy waits one lease TTL, like a new leader
    w.store.revoke(w.leases["net1"])  # net1's L3 agent stops reporting
    w.advance(12, ctl)
    assert ctl.tick().startswith("policy paper: next check in")
    assert w.backend.routers_by_agent()["net1"] == ["r1", "r2"]  # dead for 12 s, not yet checked
    w.advance(30, ctl)
    moved = [h for h in ctl.history if h["moves"]]
    assert len(moved) == 1
    assert "net1 (no heartbeat for" in moved[0]["sentence"]
    assert w.backend.routers_by_agent()["net1"] == []


def test_rebalance_moves_routers_to_a_returned_empty_node(w: World) -> None:
    ctl = w.controller("ctl1")
    w.advance(5, ctl)
    w.store.revoke(w.leases["net3"])
    ctl.tick()  # r4 goes to net1 or net2
    w.alive("net3")
    w.advance(3, ctl)
    assert w.backend.routers_by_agent()["net3"] == []  # back, and empty: nothing moves by itself
    said = ctl.rebalance()
    assert said.startswith("rebalancing 1 routers: net1 1, net2 2, net3 1") or said.startswith(
        "rebalancing 1 routers: net1 2, net2 1, net3 1"
    )
    assert len(w.backend.routers_by_agent()["net3"]) == 1


class DriftingBackend(LabNetworkBackend):
    """A backend whose own state drifts from the record (Neutron's does): reconcile says what it fixed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fences: list[list[Compare]] = []
        self.followed: list[bool] = []  # each run: did the record follow the backend?

    def reconcile(self, only_if: Sequence[Compare] = (), follow_backend: bool = False) -> str:
        self.fences.append(list(only_if))
        self.followed.append(follow_backend)
        if follow_backend:
            return "reconcile: 0 routers adopted, 1 moved in the record to follow Neutron"
        return "reconcile: 0 routers adopted, 1 moved in Neutron to match the record"


class SchedulingBackend(DriftingBackend):
    """Like Neutron with allow_automatic_l3agent_failover: it moves a dead agent's routers itself."""

    schedules_itself = True


def test_the_leader_reconciles_the_backend_in_a_thread_and_says_so_next_tick() -> None:
    w = World(DriftingBackend)
    backend = w.backend
    assert isinstance(backend, DriftingBackend)
    ctl = w.controller("ctl1")
    assert ctl.tick() == "all 3 network nodes healthy"
    assert ctl.reconciler is not None  # started by that tick, in a thread of its own
    ctl.reconciler.join(5)
    w.clock.now += 0.1
    assert ctl.tick() == (
        "all 3 network nodes healthy; reconcile: 0 routers adopted, 1 moved in Neutron to match the record"
    )
    assert ctl.tick() == "all 3 network nodes healthy"  # said once; the next run is 5 s away
    assert backend.fences == [[ctl.election.fence()]]  # fenced like a move
    standby = w.controller("ctl2")
    standby.tick()
    assert standby.reconciler is None  # only the leader reconciles


def test_under_policy_neutron_a_self_scheduling_backend_moves_routers_and_the_record_follows() -> None:
    w = World(SchedulingBackend)
    backend = w.backend
    assert isinstance(backend, SchedulingBackend)
    ctl = w.controller("ctl1")
    ctl.tick()
    ctl.set_control("policy", "neutron")
    del w.leases["net1"]  # net1's agent stops reporting: Neutron itself will reschedule its routers
    w.advance(160.0, ctl)  # past the 150 s after which Neutron reschedules a silent agent's routers
    said = ctl.tick()
    assert said.startswith("policy neutron: the backend moves routers itself, the record follows it"), said
    assert w.backend.bindings()["r1"] == "net1"  # the controller moved nothing
    # Under hastack (the first run) Neutron followed the record; under neutron every run went the other way.
    assert backend.followed[0] is False
    assert len(backend.followed) > 2
    assert all(backend.followed[1:])
    assert any("1 moved in the record to follow Neutron" in h["sentence"] for h in ctl.history)


class CountingBackend(LabNetworkBackend):
    """Counts the reads of the router definitions (an API call per read on Neutron)."""

    reads = 0

    def routers(self) -> list[str]:
        self.reads += 1
        return super().routers()


def test_a_router_a_live_move_unbound_asks_for_no_read_of_the_definitions() -> None:
    w = World(CountingBackend)
    backend = w.backend
    assert isinstance(backend, CountingBackend)
    ctl = w.controller("ctl1")
    ctl.tick()
    before = backend.reads
    ctl.in_flight.add("r1")  # an operator's move between its two steps: unbound, as it should be
    backend.remove_router("r1", "net1")
    for _ in range(5):
        w.clock.now += 0.1
        ctl.tick()
    assert backend.reads == before  # the definitions were read 0.5 s ago: no new read
    ctl.in_flight.discard("r1")
    ctl.tick()  # unbound and not in flight: perhaps deleted, read again before placing it
    assert backend.reads == before + 1


class FakeLiveness:
    """The grants as a leader sees them: silences set by the test; promises written to the store by the
    controllers the test names (a majority or not), as the real ones write them."""

    silent_s = 0.3

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.silent: dict[str, float] = {}
        self.promisers: tuple[str, ...] = ("ctl1", "ctl2", "ctl3")
        self.withdrawn = False  # a promise ends between the answer and the move
        self.leader_heard = True  # whether a majority still hears the leader's beats
        self.asked_release: list[tuple[str, int]] = []

    def silent_for(self, host: str) -> float:
        return self.silent.get(host, 0.0)

    def leader_silent(self, term: str) -> tuple[bool, str]:
        return (
            (False, "") if self.leader_heard else (True, f"ctl2, ctl3 heard nothing from {term} for 310 ms")
        )

    def next_suspicion_s(self, term: str) -> float:
        return float("inf")

    def released(self, host: str, revision: int) -> bool:
        self.asked_release.append((host, revision))
        return True

    def promised(self, host: str) -> tuple[Sequence[Compare] | None, str]:
        if len(self.promisers) < 2:
            return None, f"{host}: promises from {len(self.promisers)} of 3 (ctl2: granted {host} 40 ms ago)"
        conditions = []
        for c in self.promisers:
            key = keys.promise_key("d", host, c)
            self.store.put(key, f"{c}-1")
            conditions.append(ValueIs(key, f"{c}-1"))
            if self.withdrawn:
                self.store.delete(key)
        return conditions, f"{host}: promised by {', '.join(self.promisers)}"


def granted_world() -> tuple[World, Controller, FakeLiveness]:
    w = World()
    liveness = FakeLiveness(w.store)
    settings = Settings("d", ("net1", "net2", "net3"), 1.0, 0.1, {})
    election = Election(w.store, keys.leader_key("d"), "ctl1", 1, w.clock)
    ctl = Controller(
        w.store, w.backend, election, [], settings, w.clock, Metrics(), w.clock, liveness=liveness
    )
    ctl.tick()
    w.advance(5, ctl)
    return w, ctl, liveness


def test_a_node_silent_to_the_grants_loses_its_routers_on_a_majority_of_promises_lease_or_not() -> None:
    w, ctl, liveness = granted_world()
    liveness.silent["net1"] = 0.25
    assert ctl.tick() == "all 3 network nodes healthy"  # not yet G + m
    liveness.silent["net1"] = 0.31
    said = ctl.tick()
    assert said.startswith("moving 2 routers of net1 (no grant round for 310 ms) to healthy agents"), said
    assert "2 of 2 moved" in said
    assert w.store.get(keys.node_key("d", "net1")) is not None  # its etcd lease still lives
    assert w.backend.routers_by_agent()["net1"] == []


def test_without_a_majority_of_promises_a_silent_nodes_routers_stay() -> None:
    w, ctl, liveness = granted_world()
    liveness.silent["net1"], liveness.promisers = 0.5, ("ctl1",)
    said = ctl.tick()
    assert said.endswith(
        "; not moving the routers of net1: promises from 1 of 3 (ctl2: granted net1 40 ms ago)"
    )
    assert w.backend.routers_by_agent()["net1"] == ["r1", "r2"]


def test_a_move_away_from_a_silent_node_is_conditioned_on_the_promise_keys() -> None:
    w, ctl, liveness = granted_world()
    liveness.silent["net1"], liveness.withdrawn = 0.5, True  # the promises ended before the move landed
    said = ctl.tick()
    assert "0 of 2 moved (slowest 0 ms); 2 failed, first: router r1 stays on net1: a condition" in said
    assert w.backend.routers_by_agent()["net1"] == ["r1", "r2"]


def test_a_standby_takes_the_lead_from_a_leader_a_majority_no_longer_hears_before_its_lease_ends() -> None:
    w, leader, _liveness = granted_world()
    standby_liveness = FakeLiveness(w.store)
    settings = Settings("d", ("net1", "net2", "net3"), 1.0, 0.1, {})
    election = Election(w.store, keys.leader_key("d"), "ctl2", 1, w.clock)
    standby = Controller(
        w.store, w.backend, election, [], settings, w.clock, Metrics(), w.clock, liveness=standby_liveness
    )
    assert standby.tick() == "standby: another controller leads"
    w.advance(2, leader, standby)  # it has watched for a while
    old_fence = leader.election.fence()
    standby_liveness.leader_heard = False  # the leader froze: its etcd lease lives on, its beats stop
    w.store.revoke(w.leases["net1"])  # and an L3 agent died meanwhile
    said = standby.tick()
    assert said.startswith("moving 2 routers of net1 (lease gone) to healthy agents"), said
    assert standby.history[-2]["sentence"].startswith("took the lead: ctl2, ctl3 heard nothing from ctl1:")
    assert w.store.get(keys.leader_key("d")).value == standby.election.token
    assert not w.store.txn([old_fence], [])  # the deposed leader's writes fail from the takeover on
    assert leader.tick().startswith(
        "standby: another controller leads (lost the lead: the leader key went to ctl2"
    )


def test_no_takeover_while_a_majority_still_hears_the_leader() -> None:
    w, leader, _liveness = granted_world()
    settings = Settings("d", ("net1", "net2", "net3"), 1.0, 0.1, {})
    election = Election(w.store, keys.leader_key("d"), "ctl2", 1, w.clock)
    standby = Controller(
        w.store,
        w.backend,
        election,
        [],
        settings,
        w.clock,
        Metrics(),
        w.clock,
        liveness=FakeLiveness(w.store),
    )
    assert standby.tick() == "standby: another controller leads"
    assert w.store.get(keys.leader_key("d")).value == leader.election.token


def test_with_grants_a_live_move_binds_elsewhere_once_the_source_says_it_read_past_the_unbinding() -> None:
    w, ctl, liveness = granted_world()
    before = w.store.get_prefix(keys.bindings_prefix("d"))[1]
    assert ctl.move("r1", "net2") == "operator moved r1 from net1 to net2"
    [(source, revision)] = liveness.asked_release
    assert source == "net1"
    assert revision > before  # a revision read after the unbinding: the source must have read past it
    assert w.backend.routers_by_agent()["net2"] == ["r1", "r3"]
