"""One behaviour suite for every Store backend: in-memory, and a real etcd started on loopback."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from hastack import pki
from hastack.pki import Layout
from hastack.store import Absent, Delete, EtcdStore, MemoryStore, Put, Store, StoreError, ValueIs
from hastack.store.etcd import ClientTls
from tests.contract.conftest import Backend, free_port


@pytest.fixture
def prefix() -> str:
    return f"/test/{time.time_ns()}/"


def test_several_prefixes_are_read_at_one_revision(backend: Backend, prefix: str) -> None:
    s = backend.store
    for key in ("b/2", "a/1", "b/1"):
        s.put(prefix + key, key)
    (a, b, none), revision = s.get_prefixes([prefix + "a/", prefix + "b/", prefix + "c/"])
    assert [kv.value for kv in a] == ["a/1"]
    assert [kv.value for kv in b] == ["b/1", "b/2"]
    assert none == []
    assert revision == s.get_prefix(prefix)[1]  # nothing changed in between: the same revision
    assert revision >= max(kv.mod_revision for kv in a + b)


def test_put_get_delete(backend: Backend, prefix: str) -> None:
    s = backend.store
    assert s.get(prefix + "a") is None
    s.put(prefix + "a", "1")
    kv = s.get(prefix + "a")
    assert kv is not None
    assert kv.value == "1"
    assert kv.lease == 0
    s.delete(prefix + "a")
    assert s.get(prefix + "a") is None


def test_prefix_is_sorted_and_bounded(backend: Backend, prefix: str) -> None:
    s = backend.store
    for key in ("b", "a", "c"):
        s.put(prefix + key, key)
    s.put(prefix[:-1] + "x", "outside")  # shares the prefix but for the trailing slash
    kvs, revision = s.get_prefix(prefix)
    assert [kv.key for kv in kvs] == [prefix + "a", prefix + "b", prefix + "c"]
    assert revision >= max(kv.mod_revision for kv in kvs)


def test_create_is_compare_and_set(backend: Backend, prefix: str) -> None:
    s = backend.store
    assert s.create(prefix + "leader", "me") is True
    assert s.create(prefix + "leader", "you") is False
    kv = s.get(prefix + "leader")
    assert kv is not None
    assert kv.value == "me"


def test_txn_applies_success_or_failure_atomically(backend: Backend, prefix: str) -> None:
    s = backend.store
    s.put(prefix + "token", "A")
    moved = s.txn(
        [ValueIs(prefix + "token", "A"), Absent(prefix + "node")],
        [Put(prefix + "router", "net2"), Delete(prefix + "token")],
    )
    assert moved is True
    assert s.get(prefix + "token") is None
    router = s.get(prefix + "router")
    assert router is not None
    assert router.value == "net2"
    refused = s.txn(
        [ValueIs(prefix + "token", "A")], [Put(prefix + "router", "net1")], [Put(prefix + "refused", "yes")]
    )
    assert refused is False
    router = s.get(prefix + "router")
    assert router is not None
    assert router.value == "net2"
    assert s.get(prefix + "refused") is not None


def test_revoke_removes_the_lease_keys_at_once(backend: Backend, prefix: str) -> None:
    s = backend.store
    lease = s.grant(5)
    s.put(prefix + "node", "alive", lease=lease)
    kv = s.get(prefix + "node")
    assert kv is not None
    assert kv.lease == lease
    s.revoke(lease)
    assert s.get(prefix + "node") is None
    assert s.keepalive(lease) == -1


def test_lease_expires_without_keepalive_and_lives_with_it(backend: Backend, prefix: str) -> None:
    s = backend.store
    kept, dropped = s.grant(2), s.grant(1)
    s.put(prefix + "kept", "x", lease=kept)
    s.put(prefix + "dropped", "x", lease=dropped)
    for _ in range(6):
        backend.advance(0.5)
        assert s.keepalive(kept) >= 1
    assert s.get(prefix + "kept") is not None
    assert s.get(prefix + "dropped") is None


def test_wait_wakes_on_a_change_under_the_prefix_only(backend: Backend, prefix: str) -> None:
    s = backend.store
    _kvs, revision = s.get_prefix(prefix)
    assert s.wait(prefix, revision, timeout_s=0.3) is False
    s.put(prefix.rstrip("/") + "-other/x", "elsewhere")
    assert s.wait(prefix, revision, timeout_s=0.3) is False
    threading.Timer(0.2, lambda: s.put(prefix + "k", "v")).start()
    started = time.monotonic()
    assert s.wait(prefix, revision, timeout_s=5) is True
    assert time.monotonic() - started < 3


def test_unreachable_store_raises_store_error(backend: Backend) -> None:
    if isinstance(backend.store, MemoryStore):
        backend.store.reachable = False
        broken: Store = backend.store
    else:
        broken = EtcdStore([f"127.0.0.1:{free_port()}"], timeout_s=0.5)
    with pytest.raises(StoreError):
        broken.get("/x")
    with pytest.raises(StoreError):
        broken.grant(1)


def test_an_etcd_endpoint_that_answers_nothing_is_named_with_its_reason() -> None:
    """etcd3gw's timeouts have no message: an agent's log said "failed on every endpoint: 10.240.0.13: ;
    ..." and nothing more, the day its gates closed under load."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # connections are taken, and never answered
    try:
        store = EtcdStore([f"127.0.0.1:{silent.getsockname()[1]}"], timeout_s=0.3)
        with pytest.raises(StoreError, match=r"127\.0\.0\.1: ConnectionTimeoutError"):
            store.get("/x")
    finally:
        silent.close()


def test_etcd_store_uses_the_next_endpoint_when_one_is_down(etcd_endpoint: str, prefix: str) -> None:
    store = EtcdStore([f"127.0.0.1:{free_port()}", etcd_endpoint], timeout_s=0.5)
    store.put(prefix + "k", "v")
    kv = store.get(prefix + "k")
    assert kv is not None
    assert kv.value == "v"


def test_the_deployments_etcd_refuses_clients_without_a_certificate_of_its_ca(
    etcd_tls_endpoint: str, etcd_tls_layout: Layout, tmp_path: Path
) -> None:
    """Without this, anyone on the management network could rewrite bindings and leader keys."""
    ca, cert, key = etcd_tls_layout.ca, etcd_tls_layout.client_cert, etcd_tls_layout.client_key
    EtcdStore([etcd_tls_endpoint], tls=ClientTls(ca, cert, key)).put("/t/ok", "1")
    other = Layout(tmp_path / "other")
    pki.ensure("intruder", [], other)
    refused = {
        "plain HTTP": EtcdStore([etcd_tls_endpoint]),
        "no client certificate": EtcdStore(
            [etcd_tls_endpoint], tls=ClientTls(ca, other.ca, Path("/nonexistent"))
        ),
        "another CA's certificate": EtcdStore(
            [etcd_tls_endpoint], tls=ClientTls(ca, other.client_cert, other.client_key)
        ),
    }
    for why, store in refused.items():
        with pytest.raises(StoreError):
            store.put("/t/intruder", why)
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):  # no client certificate at all
        session.post(
            f"https://{etcd_tls_endpoint}/v3/kv/put",
            json={"key": "L3QvaQ==", "value": "MQ=="},
            verify=str(ca),
        )
    assert EtcdStore([etcd_tls_endpoint], tls=ClientTls(ca, cert, key)).get("/t/intruder") is None
