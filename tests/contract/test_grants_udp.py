"""The grants over real UDP sockets on loopback: three controllers answering a node agent's rounds, a
majority needed, a promising controller silent, a datagram under another token answered by nobody."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from hastack.grants.granter import Granter
from hastack.grants.rounds import GrantRounds
from hastack.grants.udp import Address, GrantClient, GrantServer

TOKEN, G, M = "udp-grant-token", 0.3, 0.05


def _socket(timeout_s: float) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(timeout_s)
    return sock


@pytest.fixture
def controllers() -> Iterator[dict[str, tuple[GrantServer, Address]]]:
    stop, servers, threads = threading.Event(), {}, []
    for name in ("ctl1", "ctl2", "ctl3"):
        sock = _socket(0.05)
        # Promises may be given at once here (no grant has to run out first): the test drives them.
        server = GrantServer(sock, TOKEN, name, Granter(0.0, 0.0, time.monotonic))
        servers[name] = (server, sock.getsockname())
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
    rounds = GrantRounds(list(controllers), G, M, time.monotonic)
    addresses = {name: address for name, (_server, address) in controllers.items()}
    return GrantClient(_socket(0.1), token, "net1", addresses, rounds, view_revision=lambda: 10)


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
