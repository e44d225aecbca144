"""Which network service the daemons drive, chosen by the inventory's `network_service.backend` through one
registry (as tooz chooses a coordination driver): the node agent's router host and the controller's
network backend. Neither reads a lab setting: the lab writes its own inventory with the backend it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hastack.agent.node import RouterHost
from hastack.backends import BackendError, LabNetworkBackend, NetworkBackend
from hastack.cli.errors import EXIT_BAD_INPUT, CliError
from hastack.model import Deployment
from hastack.store import Store

AGENT_DOWN_S = 3.0  # the lab L3 agents report every second


@dataclass(frozen=True)
class Wiring:
    router_host: Callable[[Deployment, str], RouterHost]
    backend: Callable[[Deployment, Store], NetworkBackend]


def _neutron_routers(_dep: Deployment, _host: str) -> RouterHost:
    """Real neutron-l3-agent routers: qrouter- namespaces."""
    from hastack.agent.qrouters import NeutronRouterHost

    return NeutronRouterHost()


def _neutron_backend(dep: Deployment, store: Store) -> NetworkBackend:
    from hastack.backends.neutron import NeutronBackend, connect  # openstacksdk loads slowly

    try:
        return NeutronBackend(connect(dep), store, dep.name)
    except BackendError as e:  # the inventory names a cloud its clouds.yaml does not hold
        raise CliError(str(e), EXIT_BAD_INPUT) from e


def _lab_routers(dep: Deployment, host: str) -> RouterHost:
    """The lab L3 agent's routers, as its plan names them."""
    from hastack.lab.l3agent import LabRouterHost
    from hastack.lab.plan import plan

    return LabRouterHost(plan(dep), host)


def _lab_backend(dep: Deployment, store: Store) -> NetworkBackend:
    return LabNetworkBackend(store, dep.name, time.time, AGENT_DOWN_S)


NETWORK_BACKENDS: dict[str, Wiring] = {
    "neutron": Wiring(_neutron_routers, _neutron_backend),
    "lab": Wiring(_lab_routers, _lab_backend),
}


def wiring(dep: Deployment) -> Wiring:
    return NETWORK_BACKENDS[dep.inventory.network_service.backend]
