"""The OpenStack lab (profile `openstack`: real neutron-server, Open vSwitch, L3 and DHCP agents), brought
up once for this package's tests after the base lab's tests have taken theirs down.

Neutron's API is reachable only inside the lab: `InLab` runs a backend's calls in a thread that entered a
lab host's network namespace (threads it starts inherit it), so the contract tests drive the real API.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from openstack.connection import Connection
from pyroute2.netns import setns

from hastack.backends import BackendError
from hastack.backends.neutron import NeutronBackend, connect
from hastack.cli.files import profile_inventory, with_lab_profile
from hastack.lab import system
from hastack.lab.plan import LabPlan, plan
from hastack.lab.state import STATE_FILE, LabState
from hastack.model import load_deployment
from hastack.store.connect import open_store
from tests.lab.conftest import PAPER, Lab, Snapshot, brought_up, needs_root

OPENSTACK_INVENTORY = profile_inventory("openstack", STATE_FILE.parent)  # what `lab up --profile` writes


def in_netns(netns: str, fn: Callable[[], Any]) -> Any:
    """fn() in a thread inside `netns`; its result, or its exception raised here."""
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            setns(netns, flags=0)
            done["value"] = fn()
        except BaseException as e:  # re-raised in the caller's thread
            done["error"] = e

    worker = threading.Thread(target=run, name=f"in-{netns}")
    worker.start()
    worker.join()
    if "error" in done:
        raise done["error"]
    return done.get("value")


class InLab:
    """Calls `target`'s methods inside a lab host's network namespace."""

    def __init__(self, target: Any, netns: str) -> None:
        self._target, self._netns = target, netns

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: in_netns(self._netns, lambda: attr(*args, **kwargs))


@pytest.fixture(scope="package")
def openstack_lab() -> Iterator[Lab]:
    needs_root()
    inventory = OPENSTACK_INVENTORY
    state = LabState.load()
    if not state.is_empty:
        if state.inventory != str(inventory):
            pytest.fail("a lab is already up: run `hastack lab down` before the lab tests")
        # `hastack lab up examples/paper.yaml --profile openstack` made it: use it, leave it up.
        yield Lab(plan(load_deployment(inventory)), Snapshot.take())
        return
    yield from brought_up(with_lab_profile(PAPER, "openstack", STATE_FILE.parent))


@dataclass
class Neutron:
    backend: Any  # NeutronBackend, its calls made inside the lab
    store: Any  # the lab's etcd (EtcdStore), likewise
    conn: Connection  # use through `run`
    plan: LabPlan
    netns: str
    inventory: str = str(OPENSTACK_INVENTORY)  # for `hastack ctl`

    def run(self, fn: Callable[[], Any]) -> Any:
        return in_netns(self.netns, fn)


@pytest.fixture(scope="package")
def neutron(openstack_lab: Lab) -> Neutron:
    """A NeutronBackend on the lab's Neutron (admin through Keystone on the VIP), its conditions checked in
    the lab's etcd; every call made from inside the first controller."""
    p: LabPlan = openstack_lab.plan
    netns = p.host(p.deployment.hosts_of("neutron-server")[0]).netns
    store = in_netns(netns, lambda: open_store(p.deployment))
    conn = connect(p.deployment)
    backend = InLab(NeutronBackend(conn, store, p.deployment.name), netns)

    def answers() -> bool:
        # Right after `lab up` the machine is busy (54 dhclients, agents syncing): Keystone may take
        # longer than HAProxy's 2 s to issue the first token. Wait until the API answers.
        try:
            return all(a.alive for a in backend.list_agents())
        except BackendError:
            return False

    system.poll("Neutron to answer with every L3 agent alive", answers, timeout=180, interval=2)
    return Neutron(backend, InLab(store, netns), conn, p, netns)
