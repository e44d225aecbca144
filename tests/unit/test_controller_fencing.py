"""The controller's side of fencing when things go wrong: the store lost and back, a failsafe round over
HTTP, a policy switch with a node whose gates the old policy left open, a lost election answer, and
values in the store nobody should have written."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from hastack import pki
from hastack.backends.lab import parse_report
from hastack.controller.api import Api, serve
from hastack.controller.election import Election
from hastack.controller.guard import GuardedStore
from hastack.controller.metrics import Metrics
from hastack.controller.service import Controller, Settings
from hastack.failsafe.peers import ControllerPeers, Peer
from hastack.fencing import ANCHOR_OPEN_S
from hastack.pki import Layout
from hastack.pki.contexts import server_context
from hastack.store import MemoryStore, StoreError, keys
from tests.unit.test_controller_service import SETTLING, TOKEN, World


@pytest.fixture
def w() -> World:
    return World()


def test_a_malformed_value_in_the_store_does_not_stop_the_loop(w: World) -> None:
    ctl = w.controller("ctl1")
    w.advance(5, ctl)
    w.store.put(keys.net_prefix("d") + "agents/net2", "{not json")
    w.store.put(keys.net_prefix("d") + "agents/net3", '{"heartbeat": "soon"}')
    said = ctl.tick()
    assert "ignored 2 malformed value(s), first /hastack/d/net/agents/net2" in said
    assert ctl.status()["leader"] is True


def test_a_setting_the_api_would_not_write_counts_as_unset_and_is_said(w: World) -> None:
    ctl = w.controller("ctl1")
    w.advance(5, ctl)
    w.store.put(keys.policy_key("d"), "fastest")
    w.store.put(keys.paused_key("d"), "yes")
    said = ctl.tick()
    assert "ignored 2 malformed value(s), first /hastack/d/control/paused" in said
    assert ctl.status()["policy"] == "hastack"


def test_an_infinite_heartbeat_is_no_report() -> None:
    # It would keep a dead agent alive forever.
    assert parse_report('{"heartbeat": 1e999}') is None
    assert parse_report('{"heartbeat": NaN}') is None
    assert parse_report('{"heartbeat": 12.5, "admin_up": false}') == (12.5, False)


def test_an_election_whose_create_committed_but_timed_out_still_leads() -> None:
    w = World()

    class LostAnswer(MemoryStore):
        lost = 1

        def txn(self, compares, success, failure=None):  # type: ignore[no-untyped-def]
            done = super().txn(compares, success, failure)
            if self.lost and success and success[0].key == keys.leader_key("d"):
                self.lost -= 1
                raise StoreError("read timed out")  # committed; the answer never came
            return done

    store = LostAnswer(w.clock)
    election = Election(store, keys.leader_key("d"), "ctl1", 1, w.clock)
    with pytest.raises(StoreError):
        election.step()
    assert election.step() is True
    w.clock.now += 1.5
    assert election.leader_for_s() == pytest.approx(1.5)  # counted: the leader may move routers


def test_nothing_moves_because_leases_lapsed_while_the_store_was_lost(w: World) -> None:
    ctl = w.controller("ctl1")
    w.advance(5, ctl)
    net1 = w.leases.pop("net1")  # net1's agent is the first to lose the store
    w.advance(0.5, ctl)
    w.store.reachable = False
    w.clock.now += 0.6  # net1's lease lapses in the outage; the leader's own lease outlives it
    assert ctl.tick().startswith("store unreachable")
    w.store.reachable = True
    assert w.store.keepalive(net1) < 0
    said = ctl.tick()  # net1's agent takes a new lease within a heartbeat
    assert said == SETTLING
    w.alive("net1")
    w.advance(2, ctl)
    assert w.backend.routers_by_agent()["net1"] == ["r1", "r2"]


def test_after_a_switch_back_to_hastack_a_node_with_gates_left_open_keeps_its_routers(w: World) -> None:
    ctl = w.controller("ctl1")
    w.advance(5, ctl)
    w.store.put(keys.policy_key("d"), "paper")  # agents drop their leases, gates held open for an hour
    for lease in list(w.leases.values()):
        w.store.revoke(lease)
    w.leases.clear()
    w.advance(2, ctl)
    w.store.put(keys.policy_key("d"), "hastack")  # net1 is cut off meanwhile: it never learns
    w.alive("net2")
    w.alive("net3")
    w.advance(5, ctl)
    assert ctl.tick() == (
        "not moving the routers of net1: the previous policy left its gates open and it has taken no "
        "lease since"
    )
    assert w.backend.routers_by_agent()["net1"] == ["r1", "r2"]
    w.clock.now += ANCHOR_OPEN_S  # the hour is over: the gates net1 holds have run out
    w.alive("net2")
    w.alive("net3")
    w.advance(3, ctl)
    assert w.backend.routers_by_agent()["net1"] == []


def guarded_controller(world: World) -> tuple[Controller, GuardedStore]:
    guard = GuardedStore(world.store, lambda k: keys.changes_gates("d", k), 1.0, 0.2, world.clock)
    settings = Settings("d", ("net1", "net2", "net3"), 1.0, 0.1, {})
    election = Election(guard, keys.leader_key("d"), "ctl1", 1, world.clock)
    ctl = Controller(guard, world.backend, election, [], settings, world.clock, Metrics(), world.clock, guard)
    return ctl, guard


def test_a_failsafe_round_over_http_is_answered_signed_and_refused_unsigned(w: World) -> None:
    ctl, guard = guarded_controller(w)
    ctl.tick()
    server = serve(Api(ctl, ctl.metrics, TOKEN, 0.1, guard), "127.0.0.1", 0)
    peer = Peer("ctl1", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        assert ControllerPeers([peer], TOKEN, 2.0).confirm("net1") == (False, "ctl1: no, I reach the store")
        w.store.reachable = False
        assert ctl.tick().startswith("store unreachable")
        assert ControllerPeers([peer], TOKEN, 2.0).confirm("net1") == (True, "all 1 controllers confirmed")
        assert ctl.history[-1]["sentence"].startswith("failsafe: etcd unreachable; promised")
        impostor = ControllerPeers([peer], "not-the-token", 2.0).confirm("net1")
        assert impostor == (False, "ctl1: refused its answer: missing or wrong X-Hastack-Signature")
        unsigned = requests.post(peer.url + "/failsafe", data=b'{"host": "net1"}', timeout=5)
        assert unsigned.status_code == 403
    finally:
        server.shutdown()


def test_a_failsafe_round_over_https_trusts_the_deployments_ca_only(w: World, tmp_path: Path) -> None:
    files, stranger = Layout(tmp_path / "pki"), Layout(tmp_path / "other")
    pki.ensure("d", [("ctl1", "127.0.0.1")], files)
    pki.ensure("other", [], stranger)
    ctl, guard = guarded_controller(w)
    w.store.reachable = False
    ctl.tick()
    server = serve(Api(ctl, ctl.metrics, TOKEN, 0.1, guard), "127.0.0.1", 0, server_context(files, "ctl1"))
    peer = Peer("ctl1", f"https://127.0.0.1:{server.server_address[1]}")
    try:
        assert ControllerPeers([peer], TOKEN, 2.0, ca=files.ca).confirm("net1")[0] is True
        assert ControllerPeers([peer], TOKEN, 2.0, ca=stranger.ca).confirm("net1") == (
            False,
            "ctl1: unreachable (SSLError)",
        )
    finally:
        server.shutdown()


def test_a_controller_that_promised_waits_one_ttl_after_the_store_is_back(w: World) -> None:
    ctl, guard = guarded_controller(w)
    w.advance(5, ctl)
    w.store.reachable = False
    ctl.tick()
    assert guard.answer().yes
    w.store.reachable = True
    w.store.revoke(w.leases.pop("net1"))  # net1 dies right after
    assert ctl.tick() == SETTLING
    w.advance(1.25, ctl)
    assert w.backend.routers_by_agent()["net1"] == []


def test_a_controller_that_just_started_counts_nodes_healthy_at_its_first_look_as_stable(w: World) -> None:
    old = w.controller("ctl1")
    w.advance(5, old)
    new = w.controller("ctl2")  # the old leader's process is gone; this one has no history
    w.store.revoke(w.leases.pop("net1"))
    w.store.delete(keys.leader_key("d"))
    assert new.tick() == SETTLING
    w.advance(1.25, new)
    assert w.backend.routers_by_agent()["net1"] == []  # moved after one TTL, not one TTL + 2 s
    w.alive("net1")  # it comes back: this controller saw it fail, so it waits the 2 s again
    w.advance(1, new)
    assert new.status()["nodes"][0]["failed"] is None
    assert next(n for n in new.status()["nodes"] if n["host"] == "net1")["routers"] == []


def test_a_bad_content_length_is_a_400_not_a_dropped_connection(w: World) -> None:
    ctl, guard = guarded_controller(w)
    ctl.tick()
    server = serve(Api(ctl, ctl.metrics, TOKEN, 0.1, guard), "127.0.0.1", 0)
    try:
        for length in ("abc", "-5", "99999999"):
            with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as conn:
                conn.sendall(
                    f"POST /failsafe HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
                )
                assert conn.recv(200).startswith(b"HTTP/1.0 400"), length
    finally:
        server.shutdown()


def test_a_leader_that_stops_while_the_store_is_gone_stops_quietly(w: World) -> None:
    ctl = w.controller("ctl1")
    w.advance(2, ctl)
    assert ctl.election.lease
    w.store.reachable = False  # `lab down` stops etcd first, say: the lease runs out by itself
    ctl.election.resign()
    assert ctl.election.lease == 0
    assert ctl.election.leader_for_s() == 0.0
