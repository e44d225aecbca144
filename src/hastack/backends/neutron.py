"""The network backend of a real OpenStack: Neutron's L3 and DHCP agent schedulers, through openstacksdk.

hastack's own record of which node serves a router is kept in the store, as the lab's is (the same keys,
`/hastack/<deployment>/net/bindings/<router id>`), and Neutron is made to follow it. Why: the node agents'
gates must follow a record that changes in one transaction with the move's conditions (the leader's fencing
token, "the failed node's lease is gone") and that they can read every heartbeat without loading Neutron's
API; Neutron's database can do neither. A move changes the record first (conditioned), then asks Neutron to
remove the router from the old agent and add it to the new one; if a Neutron call fails, `reconcile` (the
leader's, every few seconds) drives Neutron to the record again. Routers Neutron scheduled by itself (at
creation) are adopted into the record as Neutron placed them.

Neutron has no bulk move: the record moves in transactions of MOVE_BATCH, and Neutron's calls run in the
background on MOVE_WORKERS threads, each router's in order (`settle` waits for them).
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any, TypeVar

from keystoneauth1 import exceptions as ksa_exceptions
from openstack import exceptions as sdk_exceptions
from openstack.config.loader import OpenStackConfig
from openstack.connection import Connection
from openstack.exceptions import ConfigException

from hastack.backends.base import Agent, BackendError, RecordMoves
from hastack.backends.lab import agent_report
from hastack.backends.record import BindingRecord
from hastack.model import Deployment
from hastack.model.endpoints import keystone_url
from hastack.store import Absent, Compare, Delete, Put, Store, ValueIs, keys

L3_AGENT = "L3 agent"
DHCP_AGENT = "DHCP agent"
MOVE_WORKERS = 8
AGENT_IDS_S = 30.0
# How long a router this backend unbound is not adopted back from Neutron's view: Neutron follows the record
# in the background, seconds behind it on a busy cloud, and until then still shows the router where it was.
UNBOUND_HOLD_S = 60.0
T = TypeVar("T")
log = logging.getLogger(__name__)


class NeutronBackend(RecordMoves):
    """Drives Neutron's agent schedulers after the record of bindings in `store`."""

    schedules_itself = True  # with allow_automatic_l3agent_failover: policy `neutron` leaves moves to it

    def __init__(
        self,
        connection: Connection,
        store: Store,
        deployment: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = connection
        self.record = BindingRecord(store, keys.bindings_prefix(deployment), "bindings in the store")
        self.deployment = deployment
        self._mirrored: dict[str, str] = {}  # host -> the report last copied from Neutron
        self.clock = clock
        self._ids: tuple[float, dict[str, str]] = (-1e9, {})
        # Neutron follows the record in the background, each router's calls in order on one of these: a
        # controller's tick (and its election lease) must not wait for Neutron's seconds-long answers.
        self._followers = [
            ThreadPoolExecutor(1, thread_name_prefix=f"neutron-follow-{i}") for i in range(MOVE_WORKERS)
        ]
        self._pending: list[Future[str | None]] = []
        self._following: collections.Counter[str] = collections.Counter()  # routers with calls queued
        self._lock = threading.Lock()
        # The last reconcile's drifts: router -> (the host Neutron has it on, the host the record says).
        self._drift: dict[str, tuple[str, str]] = {}
        self._unbound: dict[str, float] = {}  # router -> when this backend last unbound it in the record

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (sdk_exceptions.SDKException, ksa_exceptions.ClientException) as e:
            raise BackendError(f"neutron: {what}: {_reason(e)}") from e

    def _request(self, what: str, method: str, path: str, body: dict[str, str] | None = None) -> None:
        """One scheduler call, its HTTP status checked: openstacksdk 4.22's add_router_to_agent and
        friends return whatever Neutron answered, a 409 "already hosted" included, without raising."""

        def send() -> None:
            response = self.conn.network.request(path, method, json=body)
            sdk_exceptions.raise_from_response(response)

        self._call(what, send)

    def _agents(self, agent_type: str) -> list[Any]:
        return self._call(
            f"list {agent_type}s", lambda: list(self.conn.network.agents(agent_type=agent_type))
        )

    def _agent_ids(self, fresh: bool = False) -> dict[str, str]:
        """host -> L3 agent id; read again after AGENT_IDS_S (agents come and go rarely)."""
        read_at, ids = self._ids
        if fresh or self.clock() - read_at > AGENT_IDS_S:
            ids = {str(a.host): str(a.id) for a in self._agents(L3_AGENT)}
            self._ids = (self.clock(), ids)
        return ids

    def _agent_id(self, host: str, agent_type: str = L3_AGENT) -> str:
        for agent in self._agents(agent_type):
            if agent.host == host:
                return str(agent.id)
        raise BackendError(f"no {agent_type} on {host}")

    def list_agents(self) -> list[Agent]:
        return [Agent(a.host, bool(a.is_alive), bool(a.is_admin_state_up)) for a in self._agents(L3_AGENT)]

    def routers(self) -> list[str]:
        return sorted(self._call("list routers", lambda: [str(r.id) for r in self.conn.network.routers()]))

    def routers_by_agent(self) -> dict[str, list[str]]:
        """What Neutron says (the record may be ahead of it: see `reconcile`)."""
        return {host: sorted(self._hosted(host, agent)) for host, agent in self._agent_ids().items()}

    def _hosted(self, host: str, agent_id: str) -> list[str]:
        return self._call(
            f"routers on {host}",
            lambda: [str(r.id) for r in self.conn.network.agent_hosted_routers(agent_id)],
        )

    def bindings(self) -> dict[str, str]:
        """The record: router id -> the host that serves it (what the node agents' gates follow)."""
        return self.record.all()

    def remove_router(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        ids = self._agent_ids()
        self._adopt([router], ids)
        with self._lock:  # before the record changes: a reconcile reading Neutron meanwhile must see it
            self._unbound[router] = self.clock()
        self.record.remove(router, host, only_if)
        self._follow(router, lambda: self._neutron_remove(router, host, ids))

    def add_router(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        ids = self._agent_ids()
        if host not in ids:
            raise BackendError(f"no {L3_AGENT} on {host}")
        if self._call(f"find router {router}", lambda: self.conn.network.find_router(router)) is None:
            raise BackendError(f"no router {router}")
        self._adopt([router], ids)
        self.record.add(router, host, only_if)
        self._follow(router, lambda: self._neutron_add(router, host, ids))

    def move_routers(
        self, routers: Sequence[str], source: str, target: str, only_if: Sequence[Compare] = ()
    ) -> dict[str, str | None]:
        """The record moves MOVE_BATCH routers per transaction (record.py); Neutron follows in the
        background (`settle` waits for it)."""
        ids = self._agent_ids()
        if target not in ids:
            return dict.fromkeys(routers, f"no {L3_AGENT} on {target}")
        self._adopt(routers, ids)
        done = self.record.move(routers, source, target, only_if)
        for router in (r for r, error in done.items() if error is None):
            self._follow(router, functools.partial(self._neutron_move, router, source, target, ids))
        return done

    def _neutron_move(self, router: str, source: str, target: str, ids: dict[str, str]) -> None:
        self._neutron_remove(router, source, ids)
        self._neutron_add(router, target, ids)

    def _follow(self, router: str, call: Callable[[], None]) -> None:
        """Neutron's part of a change already in the record, in the background; a failure is logged
        and left to `reconcile`."""

        def run() -> str | None:
            try:
                call()
            except BackendError as e:
                log.warning("router %s: Neutron did not follow the record (reconcile will): %s", router, e)
                return str(e)
            finally:
                with self._lock:
                    self._following[router] -= 1
            return None

        follower = self._followers[zlib.crc32(router.encode()) % MOVE_WORKERS]
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()]
            self._following[router] += 1
            self._pending.append(follower.submit(run))

    def settle(self, timeout_s: float = 120.0) -> list[str]:
        """Wait until Neutron has followed every change made so far; the errors it gave."""
        with self._lock:
            pending = list(self._pending)
        done, late = wait(pending, timeout=timeout_s)
        errors = [e for f in done if (e := f.result()) is not None]
        return errors + [f"{len(late)} Neutron calls still running after {timeout_s:g} s"] * bool(late)

    def _neutron_remove(self, router: str, host: str, ids: dict[str, str]) -> None:
        # Neutron answers 204 even when the agent does not host the router: ask first.
        if host in ids and router in self._hosted(host, ids[host]):
            self._request(
                f"remove router {router} from {host}", "DELETE", f"/agents/{ids[host]}/l3-routers/{router}"
            )

    def _neutron_add(self, router: str, host: str, ids: dict[str, str]) -> None:
        body = {"router_id": router}
        self._request(f"add router {router} to {host}", "POST", f"/agents/{ids[host]}/l3-routers", body)

    def _held(self) -> set[str]:
        """Routers Neutron's view of which is behind the record: calls queued, or unbound here lately. A
        fenced live move unbinds a router, waits for its old gate to run out, then binds it elsewhere;
        adopting it from Neutron in between would bind it back to its source (the move's second step then
        finds it "already hosted", and the router stays where the move took it from)."""
        now = self.clock()
        with self._lock:
            self._unbound = {r: t for r, t in self._unbound.items() if now - t < UNBOUND_HOLD_S}
            unbound = set(self._unbound)
        return unbound | self._queued()

    def _queued(self) -> set[str]:
        """Routers whose Neutron calls are still queued."""
        with self._lock:
            return {r for r, n in self._following.items() if n > 0}

    def _adopt(self, routers: Sequence[str], ids: dict[str, str]) -> None:
        """Routers the record does not bind yet are recorded where Neutron put them (if it did)."""
        unrecorded = set(routers) - set(self.bindings()) - self._held()
        if not unrecorded:
            return
        for host, agent in ids.items():
            for router in unrecorded & set(self._hosted(host, agent)):
                self.record.txn([Absent(self.record.key(router))], [Put(self.record.key(router), host)])

    def reconcile(self, only_if: Sequence[Compare] = (), follow_backend: bool = False) -> str:
        """Make Neutron host every router where the record says (and record what Neutron placed by
        itself), or with `follow_backend` (Neutron reschedules by itself) record where Neutron hosts
        each router; a sentence saying what changed, "" if nothing did. The leader's, conditioned on its
        fencing token."""
        self._mirror_reports()
        ids = self._agent_ids()
        neutron = {r: h for h, agent in ids.items() for r in self._hosted(h, agent)}
        record = self.bindings()
        key = self.record.key
        adopted = set(neutron) - set(record) - self._held()
        for router in adopted:
            self.record.txn([Absent(key(router)), *only_if], [Put(key(router), neutron[router])])
        gone = set(record) - set(self.routers())
        for router in gone:  # deleted in Neutron: forget it
            self.record.txn([ValueIs(key(router), record.pop(router)), *only_if], [Delete(key(router))])
        busy = self._queued()  # a router whose calls are still queued is not drifting: it is being moved
        drifted = sorted(r for r, h in record.items() if neutron.get(r) != h and h in ids and r not in busy)
        if follow_backend:
            self._drift = {}
            drifted = [r for r in drifted if r in neutron]  # a router Neutron hosts nowhere stays recorded
            for router in drifted:
                self.record.txn(
                    [ValueIs(key(router), record[router]), *only_if], [Put(key(router), neutron[router])]
                )
            moved = f"{len(drifted)} moved in the record to follow Neutron"
        else:
            drifted = self._confirmed(drifted, neutron, record)
            if not self._drive_back(drifted, neutron, record, ids, only_if):
                return "reconcile: not the leader any more"
            moved = f"{len(drifted)} moved in Neutron to match the record"
        if not (adopted or drifted or gone):
            return ""
        forgot = f", {len(gone)} deleted ones forgotten" if gone else ""
        return f"reconcile: {len(adopted)} routers adopted, {moved}{forgot}"

    def _mirror_reports(self) -> None:
        """Each L3 agent's last report to Neutron, copied where the lab's agents report theirs: the
        controller's heartbeat-based policies and `ctl status` see Neutron's own view of its agents."""
        changed: list[Put] = []
        for a in self._agents(L3_AGENT):
            try:  # Neutron's "YYYY-MM-DD HH:MM:SS", in UTC
                beat = datetime.fromisoformat(str(a.last_heartbeat_at)).replace(tzinfo=UTC)
            except ValueError:
                continue  # never reported: no heartbeat to copy
            op = agent_report(self.deployment, str(a.host), bool(a.is_admin_state_up), beat.timestamp())
            # Agents report every 30 s, reconcile runs every 5 s: unchanged reports are not written again
            # (each write wakes every controller).
            if self._mirrored.get(op.key) != op.value:
                changed.append(op)
        if changed and self.record.txn([], [*changed]):
            self._mirrored.update({op.key: op.value for op in changed})

    def _confirmed(self, drifted: list[str], neutron: dict[str, str], record: dict[str, str]) -> list[str]:
        """The drifted routers this run found as the last one did. A drift seen once may be another
        mover's move half-way (removed from one agent, not yet added to the other: a second backend, an
        operator's script); driving it back then would race that mover's next call."""
        seen, self._drift = self._drift, {r: (neutron.get(r, ""), record[r]) for r in drifted}
        return [r for r in drifted if seen.get(r) == self._drift[r]]

    def _drive_back(
        self,
        drifted: list[str],
        neutron: dict[str, str],
        record: dict[str, str],
        ids: dict[str, str],
        only_if: Sequence[Compare],
    ) -> bool:
        """Neutron told to host each drifted router where the record says; False if not the leader."""
        for router in drifted:
            if not self.record.txn(list(only_if), []):
                return False
            if router in neutron:
                self._neutron_remove(router, neutron[router], ids)
            self._neutron_add(router, record[router], ids)
            del self._drift[router]
        return True

    # DHCP: Neutron schedules each network on dhcp_agents_per_network agents by itself.
    def dhcp_agents_by_network(self, networks: Iterable[str]) -> dict[str, list[str]]:
        """The hosts of the DHCP agents serving each network."""
        return {net: sorted(self._dhcp_hosts(net)) for net in networks}

    def _dhcp_hosts(self, network: str) -> list[str]:
        return self._call(
            f"DHCP agents of network {network}",
            lambda: [str(a.host) for a in self.conn.network.network_hosting_dhcp_agents(network)],
        )

    def add_dhcp_network(self, network: str, host: str) -> None:
        agent_id = self._agent_id(host, DHCP_AGENT)
        body = {"network_id": network}
        self._request(
            f"add network {network} to the DHCP agent on {host}",
            "POST",
            f"/agents/{agent_id}/dhcp-networks",
            body,
        )

    def remove_dhcp_network(self, network: str, host: str) -> None:
        agent_id = self._agent_id(host, DHCP_AGENT)
        self._request(
            f"remove network {network} from the DHCP agent on {host}",
            "DELETE",
            f"/agents/{agent_id}/dhcp-networks/{network}",
        )


def _reason(e: Exception) -> str:
    """One line: Neutron's own message where it sent one (NeutronError body), else the exception's."""
    details = getattr(e, "details", None)
    text = str(details) if details else str(e)
    return " ".join(text.split())


def connect(dep: Deployment, timeout_s: float = 30.0) -> Connection:
    """A connection as the inventory's `network_service.cloud` entry of clouds.yaml, or else as the
    deployment's admin through its identity endpoint (the VIP when Keystone is load-balanced); HTTPS
    checked against `network_service.ca_bundle` when it names one. No request is made yet: errors come
    with the first call, as BackendError; a cloud clouds.yaml does not hold is one at once."""
    service = dep.inventory.network_service
    tls: dict[str, Any] = {"cacert": service.ca_bundle} if service.ca_bundle else {}
    if service.cloud is not None:
        files = [service.clouds_yaml] if service.clouds_yaml else None
        try:
            region = OpenStackConfig(config_files=files).get_one(
                cloud=service.cloud, api_timeout=timeout_s, **tls
            )
        except (ConfigException, OSError) as e:
            where = service.clouds_yaml or "clouds.yaml"
            raise BackendError(f"network_service.cloud {service.cloud!r} in {where}: {_reason(e)}") from e
        return Connection(config=region)
    return Connection(
        auth_url=keystone_url(dep),
        username="admin",
        password=dep.inventory.secrets.keystone_admin_password,
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
        identity_api_version="3",
        api_timeout=timeout_s,
        **tls,
    )
