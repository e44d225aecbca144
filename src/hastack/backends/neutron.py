"""The network backend of a real OpenStack: Neutron's L3 and DHCP agent schedulers, through openstacksdk.

Neutron keeps its state in its own database, so the conditions of a move (the leader's fencing token, "the
failed node's lease is gone") cannot be part of Neutron's change: they are checked in the store right before
each call. The window between that check and Neutron's change is the one the README states; the node
agent's gate closes it on the data plane (a fenced node forwards nothing whatever Neutron says).

Neutron has no bulk move: `move_routers` runs the per-router remove + add calls on a few threads, so a
thousand routers cost a thousand round trips spread over MOVE_WORKERS connections, not in series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from keystoneauth1 import exceptions as ksa_exceptions
from openstack import exceptions as sdk_exceptions
from openstack.connection import Connection

from hastack.backends.base import Agent, BackendError, NetworkBackend
from hastack.model import Deployment
from hastack.render.keystone import keystone_url
from hastack.store import Compare, Store, StoreError

L3_AGENT = "L3 agent"
DHCP_AGENT = "DHCP agent"
MOVE_WORKERS = 8
T = TypeVar("T")


class NeutronBackend(NetworkBackend):
    """Drives Neutron's agent schedulers; `store` is where the `only_if` conditions are checked."""

    def __init__(self, connection: Connection, store: Store | None = None) -> None:
        self.conn = connection
        self.store = store

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
        hosted: dict[str, list[str]] = {}
        for agent in self._agents(L3_AGENT):
            hosted.setdefault(agent.host, []).extend(sorted(self._hosted(agent.host, str(agent.id))))
        return hosted

    def _hosted(self, host: str, agent_id: str) -> list[str]:
        return self._call(
            f"routers on {host}",
            lambda: [str(r.id) for r in self.conn.network.agent_hosted_routers(agent_id)],
        )

    def remove_router(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        self._remove(router, host, self._agent_id(host), only_if)

    def add_router(self, router: str, host: str, only_if: Sequence[Compare] = ()) -> None:
        self._add(router, host, self._agent_id(host), only_if)

    def move_router(self, router: str, source: str, target: str, only_if: Sequence[Compare] = ()) -> None:
        ids = {a.host: str(a.id) for a in self._agents(L3_AGENT)}
        self._move(router, source, target, ids, only_if)

    def move_routers(
        self, routers: Sequence[str], source: str, target: str, only_if: Sequence[Compare] = ()
    ) -> dict[str, str | None]:
        ids = {a.host: str(a.id) for a in self._agents(L3_AGENT)}
        if target not in ids:
            return dict.fromkeys(routers, f"no {L3_AGENT} on {target}")

        def one(router: str) -> str | None:
            try:
                self._move(router, source, target, ids, only_if)
            except BackendError as e:
                return str(e)
            return None

        with ThreadPoolExecutor(MOVE_WORKERS, thread_name_prefix="neutron-move") as pool:
            return dict(zip(routers, pool.map(one, routers), strict=True))

    def _move(
        self, router: str, source: str, target: str, ids: dict[str, str], only_if: Sequence[Compare]
    ) -> None:
        for host in (source, target):
            if host not in ids:
                raise BackendError(f"no {L3_AGENT} on {host}")
        self._remove(router, source, ids[source], only_if)
        self._add(router, target, ids[target], only_if)

    def _remove(self, router: str, host: str, agent_id: str, only_if: Sequence[Compare]) -> None:
        self._check(only_if, f"router {router} stays on {host}")
        hosted = self._call(
            f"routers on {host}",
            lambda: {str(r.id) for r in self.conn.network.agent_hosted_routers(agent_id)},
        )
        if router not in hosted:
            raise BackendError(f"router {router} is not hosted by {host}")
        # Neutron answers 204 even when the agent does not host the router: hence the check above.
        self._request(
            f"remove router {router} from {host}", "DELETE", f"/agents/{agent_id}/l3-routers/{router}"
        )

    def _add(self, router: str, host: str, agent_id: str, only_if: Sequence[Compare]) -> None:
        self._check(only_if, f"router {router} not added to {host}")
        body = {"router_id": router}
        self._request(f"add router {router} to {host}", "POST", f"/agents/{agent_id}/l3-routers", body)

    def _check(self, only_if: Sequence[Compare], refusal: str) -> None:
        if not only_if:
            return
        if self.store is None:
            raise BackendError(f"{refusal}: conditions given but no store to check them in")
        try:
            held = self.store.txn(list(only_if), [])
        except StoreError as e:
            raise BackendError(f"{refusal}: {e}") from e
        if not held:
            raise BackendError(f"{refusal}: a condition of the move failed")

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
    """A connection as the deployment's admin, through its identity endpoint (the VIP when Keystone is
    load-balanced). No request is made yet: errors come with the first call, as BackendError."""
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
    )
