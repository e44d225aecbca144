"""The etcd backend, over etcd's v3 gRPC gateway (the etcd3gw client, as OpenStack's tooz uses).

Endpoints are tried in order; a request that fails on one member goes to the next, so a dead member does
not stall the caller. Every failure becomes StoreError, raised from its cause.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import etcd3gw
import requests
from etcd3gw.exceptions import Etcd3Exception

from hastack.store.base import Absent, Compare, Delete, KeyValue, Op, Store, StoreError


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _prefix_end(prefix: str) -> str:
    """The first key after every key that starts with `prefix` (etcd's range_end)."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


@dataclass(frozen=True)
class ClientTls:
    """HTTPS to etcd: the CA that issued its members' certificates, and this client's certificate."""

    ca: Path
    cert: Path
    key: Path


def _session(tls: ClientTls | None) -> requests.Session:
    """A session that ignores the environment: REQUESTS_CA_BUNDLE would replace the deployment's CA, and an
    HTTP(S)_PROXY would send the store's traffic somewhere else."""
    session = requests.Session()
    session.trust_env = False
    if tls is not None:
        session.verify = str(tls.ca)
        session.cert = (str(tls.cert), str(tls.key))
    return session


def _key_value(kv: dict[str, Any]) -> KeyValue:
    return KeyValue(
        _unb64(kv["key"]), _unb64(kv.get("value", "")), int(kv["mod_revision"]), int(kv.get("lease", 0))
    )


class EtcdStore(Store):
    def __init__(self, endpoints: list[str], timeout_s: float = 2.0, tls: ClientTls | None = None) -> None:
        """`endpoints` like ["10.240.0.11:2379", ...]; `tls`: HTTPS with this client certificate."""
        if not endpoints:
            raise StoreError("etcd: no endpoints")
        self._clients = []
        for ep in endpoints:
            host, _, port = ep.rpartition(":")
            client = etcd3gw.client(
                host=host,
                port=int(port),
                timeout=timeout_s,
                protocol="http" if tls is None else "https",
                session=_session(tls),
            )
            self._clients.append(client)
        self._preferred = 0

    def _call(self, what: str, fn: Any) -> Any:
        errors = []
        n = len(self._clients)
        for i in range(n):
            idx = (self._preferred + i) % n
            try:
                result = fn(self._clients[idx])
            except (
                Etcd3Exception,
                OSError,
                KeyError,
                ValueError,
            ) as e:  # OSError: requests' too, and TLS files
                # Some say nothing (etcd3gw's timeouts): their type is then the reason.
                errors.append(f"{self._clients[idx].host}: {str(e) or type(e).__name__}")
                continue
            self._preferred = idx
            return result
        raise StoreError(f"etcd {what} failed on every endpoint: {'; '.join(errors)}")

    def get(self, key: str) -> KeyValue | None:
        kvs, _rev = self._range(key, None)
        return kvs[0] if kvs else None

    def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        return self._range(prefix, _prefix_end(prefix))

    def get_prefixes(self, prefixes: Sequence[str]) -> tuple[list[list[KeyValue]], int]:
        """One transaction of range reads: etcd answers them all at the revision it ran at."""
        ranges = [
            {
                "request_range": {
                    "key": _b64(p),
                    "range_end": _prefix_end(p),
                    "sort_order": "ASCEND",
                    "sort_target": "KEY",
                }
            }
            for p in prefixes
        ]
        body = {"compare": [], "success": ranges, "failure": []}
        result = self._call("get", lambda c: c.transaction(body))
        found = [
            [_key_value(kv) for kv in r.get("response_range", {}).get("kvs", [])]
            for r in result.get("responses", [{} for _ in prefixes])
        ]
        return found, int(result["header"]["revision"])

    def _range(self, key: str, range_end: str | None) -> tuple[list[KeyValue], int]:
        body: dict[str, Any] = {"key": _b64(key)}
        if range_end:
            body["range_end"] = range_end
            body["sort_order"] = "ASCEND"
            body["sort_target"] = "KEY"
        result = self._call("get", lambda c: c.post(c.get_url("/kv/range"), json=body))
        return [_key_value(kv) for kv in result.get("kvs", [])], int(result["header"]["revision"])

    def txn(self, compares: list[Compare], success: list[Op], failure: list[Op] | None = None) -> bool:
        body = {
            "compare": [self._compare(c) for c in compares],
            "success": [self._op(o) for o in success],
            "failure": [self._op(o) for o in failure or []],
        }
        result = self._call("txn", lambda c: c.transaction(body))
        return bool(result.get("succeeded", False))

    @staticmethod
    def _compare(c: Compare) -> dict[str, Any]:
        if isinstance(c, Absent):
            return {"key": _b64(c.key), "result": "EQUAL", "target": "CREATE", "create_revision": 0}
        return {"key": _b64(c.key), "result": "EQUAL", "target": "VALUE", "value": _b64(c.value)}

    @staticmethod
    def _op(o: Op) -> dict[str, Any]:
        if isinstance(o, Delete):
            return {"request_delete_range": {"key": _b64(o.key)}}
        put: dict[str, Any] = {"key": _b64(o.key), "value": _b64(o.value)}
        if o.lease:
            put["lease"] = o.lease
        return {"request_put": put}

    def grant(self, ttl_s: int) -> int:
        return int(self._call("lease grant", lambda c: c.lease(ttl_s)).id)

    def keepalive(self, lease: int) -> int:
        result = self._call(
            "lease keepalive", lambda c: c.post(c.get_url("/lease/keepalive"), json={"ID": lease})
        )
        return int(result.get("result", {}).get("TTL", -1))

    def revoke(self, lease: int) -> None:
        self._call("lease revoke", lambda c: c.post(c.get_url("/kv/lease/revoke"), json={"ID": lease}))

    def wait(self, prefix: str, after_revision: int, timeout_s: float) -> bool:
        """One watch on the gateway's /v3/watch stream, read until its first event or the deadline.

        etcd3gw's Watcher suits long-lived watches (a thread pool each, no timeout on the stream); a
        control loop needs a bounded wait it can repeat every tick, so this one reads the stream itself,
        with the remaining time as the read timeout."""
        client = self._clients[self._preferred]
        body: dict[str, Any] = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": _prefix_end(prefix),
                "start_revision": after_revision + 1,
            }
        }
        deadline = time.monotonic() + timeout_s
        try:
            # The client's session: it carries the TLS settings (and reuses the connection).
            with client.session.post(
                client.get_url("/watch"), json=body, stream=True, timeout=(1.0, max(0.05, timeout_s))
            ) as resp:
                for line in resp.iter_lines():
                    if line and json.loads(line).get("result", {}).get("events"):
                        return True
                    if time.monotonic() > deadline:
                        return False
        except requests.exceptions.ConnectionError as e:
            if isinstance(e.__context__, TimeoutError) or "Read timed out" in str(e):
                return False
            raise StoreError(f"etcd watch failed: {e}") from e
        except requests.exceptions.Timeout:
            return False
        except requests.RequestException as e:
            raise StoreError(f"etcd watch failed: {e}") from e
        return False
