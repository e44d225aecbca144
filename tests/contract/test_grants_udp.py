"""The grants over real UDP sockets on loopback: three controllers answering a node agent's rounds, a
majority needed, a promising controller silent, a datagram under another token answered by nobody; and the
promises the leader asks for, written to a real etcd, a move conditioned on them, and their end."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from hastack.grants import wire
from hastack.grants.granter import Granter
from hastack.grants.promises import PromiseKeys
from hastack.grants.rounds import GrantRounds
from hastack.grants.udp import Address, GrantClient, GrantServer
from hastack.store import Delete, EtcdStore, Put, Store, StoreError, ValueIs, keys

TOKEN, G, M, DEPLOYMENT = "udp-grant-token", 0.3, 0.05, "grants"


def _socket(timeout_s: float) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(timeout_s)
    return sock


@pytest.fixture
def store(etcd_endpoint: str) -> Store:
    s = EtcdStore([etcd_endpoint], timeout_s=2.0)
    (old,), _rev = s.get_prefixes([keys.root(DEPLOYMENT)])
    if old:
        s.txn([], [Delete(kv.key) for kv in old])
    return s


@pytest.fixture
def controllers(store: Store) -> Iterator[dict[str, tuple[GrantServer, Address]]]:
    stop, servers, threads = threading.Event(), {}, []
    socks = {name: _socket(0.05) for name in ("ctl1", "ctl2", "ctl3")}
    peers = {name: sock.getsockname() for name, sock in socks.items()}
    for name, sock in socks.items():
        # Promises may be given at once here (no grant has to run out first): the test drives them.
        granter = Granter(0.0, 0.0, time.monotonic)
        promises = PromiseKeys(store, DEPLOYMENT, name, granter, hold_s=0.0)
        promises.start()
        server = GrantServer(sock, TOKEN, name, granter, promises.write, peers)
        servers[name] = (server, peers[name])
        threads.append(threading.Thread(target=server.run, args=(stop,), daemon=True))
    for t in threads:
        t.start()
    yield servers
    stop.set()
    for t in threads:
        t.join(2)
    for server, _address in servers.values():
        server.sock.close()


def _client(controllers: dict[str, tuple[GrantServer, Address]], token: str = TOKEN) -> GrantClient:
    """A node agent whose bindings view is newer than anything: every controller's grant counts (each
    grants from the revision of its start's read, and earlier tests have written to this etcd)."""
    rounds = GrantRounds(list(controllers), G, M, time.monotonic)
    addresses = {name: address for name, (_server, address) in controllers.items()}
    return GrantClient(_socket(0.1), token, "net1", addresses, rounds, view_revision=lambda: 10**9)


def test_a_round_answered_by_every_controller_gives_its_deadline(
    controllers: dict[str, tuple[GrantServer, Address]],
) -> None:
    client = _client(controllers)
    sent = time.monotonic()
    number = client.send_round()
    assert client.receive(0.3) == []
    r = next(r for r in client.rounds.rounds if r.number == number)
    assert r.granted == {"ctl1", "ctl2", "ctl3"}
    assert client.rounds.deadline() == pytest.approx(r.sent + G - M)
    assert r.sent >= sent


def test_a_majority_is_enough_and_a_minority_is_not(
    controllers: dict[str, tuple[GrantServer, Address]],
) -> None:
    client = _client(controllers)
    assert controllers["ctl1"][0].granter.begin_promise("net1", "ctl1") is not None
    client.send_round()
    client.receive(0.3)
    with_two = client.rounds.deadline()
    assert with_two > 0  # ctl2 and ctl3 granted
    assert controllers["ctl2"][0].granter.begin_promise("net1", "ctl2") is not None
    client.send_round()
    client.receive(0.3)
    assert client.rounds.deadline() == with_two  # ctl3 alone: the deadline stays where it was


def test_a_round_under_another_token_is_answered_by_nobody(
    controllers: dict[str, tuple[GrantServer, Address]],
) -> None:
    client = _client(controllers, token="another-deployment")
    client.send_round()
    assert client.receive(0.3) == []  # nothing came back at all
    assert client.rounds.deadline() == 0.0
    assert sum(server.refused for server, _address in controllers.values()) == 3


def test_a_move_conditioned_on_a_majority_of_promises_commits_and_grants_resume_past_it(
    controllers: dict[str, tuple[GrantServer, Address]], store: Store
) -> None:
    leader = controllers["ctl1"][0]
    promised, refused = leader.ask("net1", timeout_s=2.0)
    assert len(promised) >= 2, refused  # a majority answered (it stops waiting there)
    for controller, promise in promised.items():
        kv = store.get(keys.promise_key(DEPLOYMENT, "net1", controller))
        assert kv is not None  # written before the answer
        assert kv.value == promise
    client = _client(controllers)
    client.send_round()
    assert client.receive(0.3) == []
    assert client.rounds.deadline() == 0.0  # a majority promises: no round can gather a majority
    conditions = [ValueIs(keys.promise_key(DEPLOYMENT, "net1", c), p) for c, p in promised.items()]
    binding = keys.binding_key(DEPLOYMENT, "r1")
    assert store.txn(list(conditions), [Put(binding, "net2")])
    moved = store.get(binding)
    assert moved is not None
    time.sleep(0.3)  # the third controller was asked too: its promise, if any, is written by now
    ended = sum(
        PromiseKeys(store, DEPLOYMENT, server.name, server.granter, hold_s=0.0).end_due()
        for server, _address in controllers.values()
    )
    assert ended >= len(promised)
    (left,), _rev = store.get_prefixes([keys.promises_prefix(DEPLOYMENT)])
    assert left == []
    assert not store.txn(list(conditions), [Put(binding, "net1")])  # ended: no move can commit after
    stale = GrantClient(_socket(0.1), TOKEN, "net1", client.controllers, client.rounds, lambda: 0)
    stale.send_round()
    refusals = stale.receive(0.3)
    assert any("read at revision 0" in why for why in refusals)  # a promiser wants the move seen first
    assert client.rounds.deadline() == 0.0  # the third alone is no majority
    fresh = GrantClient(_socket(0.1), TOKEN, "net1", client.controllers, client.rounds, lambda: 10**9)
    fresh.send_round()
    assert fresh.receive(0.3) == []
    assert client.rounds.deadline() > 0.0


def test_a_promise_request_from_an_address_that_is_no_controller_is_refused(
    controllers: dict[str, tuple[GrantServer, Address]],
) -> None:
    server, address = controllers["ctl2"]
    sock = _socket(0.3)
    sock.sendto(wire.silent(TOKEN, wire.Silent("ctl1", "net1", "n1")), address)
    with pytest.raises(TimeoutError):
        sock.recvfrom(2048)  # no promise, and no refusal either: nothing answered
    deadline = time.monotonic() + 1
    while server.refused == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.refused == 1
    assert server.granter.on_request("net1") is not None  # it still grants: it promised nothing


def test_a_controllers_new_run_deletes_the_promises_of_the_last_and_fails_its_late_writes(
    store: Store,
) -> None:
    clock = time.monotonic
    earlier = PromiseKeys(store, DEPLOYMENT, "ctl1", Granter(G, M, clock), hold_s=0.0)
    earlier.start()
    earlier.write("net1", "ctl1-a-1")
    later = PromiseKeys(store, DEPLOYMENT, "ctl1", Granter(G, M, clock), hold_s=0.0)
    assert later.granter.on_request("net1") is None  # grants nothing before its start
    assert later.start() == 1
    assert store.get(keys.promise_key(DEPLOYMENT, "net1", "ctl1")) is None
    with pytest.raises(StoreError, match="another run"):
        earlier.write("net2", "ctl1-a-2")  # a write of the earlier run still in flight: it fails
    assert store.get(keys.promise_key(DEPLOYMENT, "net2", "ctl1")) is None
    floor = later.granter.on_request("net1")
    assert floor is not None
    assert floor == store.get_prefix(keys.root(DEPLOYMENT))[1]  # read after the delete, the last write


def test_a_controller_goes_on_granting_after_a_datagram_it_failed_to_handle() -> None:
    def broken(_beat: wire.Beat) -> None:
        raise RuntimeError("a bug in handling beats")

    sock, peer = _socket(0.05), _socket(0.05)
    peers = {"ctl1": sock.getsockname(), "ctl2": peer.getsockname()}
    granter = Granter(G, M, time.monotonic)
    granter.start(0)
    server = GrantServer(sock, TOKEN, "ctl1", granter, peers=peers, on_beat=broken)
    stop = threading.Event()
    thread = threading.Thread(target=server.run, args=(stop,), daemon=True)
    thread.start()
    try:
        peer.sendto(wire.beat(TOKEN, wire.Beat("ctl2", "", False, True)), peers["ctl1"])
        rounds = GrantRounds(["ctl1"], G, M, time.monotonic)
        client = GrantClient(_socket(0.1), TOKEN, "net1", {"ctl1": peers["ctl1"]}, rounds, lambda: 10**9)
        time.sleep(0.1)
        client.send_round()
        assert client.receive(0.5) == []
        assert rounds.deadline() > 0  # the server thread survived the failure and granted
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(2)
        sock.close()
        peer.close()
