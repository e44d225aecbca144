"""The lab's network plane as data, and the L3 agent's decision: pure, tested with plain values."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from hastack.lab.l3agent import decide
from hastack.lab.topology import EXTERNAL_VLAN, Router, network_plan
from hastack.model import Deployment, InventoryError, load_deployment


def test_paper_plan_has_the_papers_54_vms_behind_6_routers(paper: Deployment) -> None:
    n = network_plan(paper)
    assert (len(n.routers), len(n.vms)) == (6, 54)
    assert n.data_hosts == ("net1", "net2", "cmp1", "cmp2")
    assert {vm.host for vm in n.vms} == {"cmp1", "cmp2"}
    assert sorted(len(r.floating) for r in n.routers) == [9] * 6
    assert EXTERNAL_VLAN not in n.vlans
    assert n.client_address == "10.244.0.2/21"
    assert n.client_underlay == "10.240.0.254"


def test_addresses_and_macs_are_unique_and_consistent(paper: Deployment) -> None:
    n = network_plan(paper)
    floating = [vm.floating for vm in n.vms]
    fixed = [vm.address for vm in n.vms]
    assert len(set(floating)) == len(floating)
    assert len(set(fixed)) == len(fixed)
    macs = [m for r in n.routers for m in (r.qr_mac, r.qg_mac)]
    assert len(set(macs)) == len(macs)
    by_id = {r.id: r for r in n.routers}
    for vm in n.vms:
        router = by_id[vm.router]
        assert (vm.floating, vm.address.split("/")[0]) in router.floating
        assert IPv4Address(vm.address.split("/")[0]) in IPv4Network(router.tenant_cidr)
        assert vm.gateway == router.gateway.split("/")[0]
        assert vm.vlan == router.vlan
        assert IPv4Address(vm.floating) in n.external_cidr


def test_router_definition_round_trips_through_json(paper: Deployment) -> None:
    router = network_plan(paper).routers[3]
    assert Router.from_json(router.to_json()) == router


def test_decide_builds_the_missing_and_removes_the_extra() -> None:
    plan = decide(wanted={"r1", "r2", "r3"}, present={"r2", "r9"})
    assert plan.build == ("r1", "r3")
    assert plan.remove == ("r9",)
    nothing = decide(wanted={"r1"}, present={"r1"})
    assert (nothing.build, nothing.remove) == ((), ())


def test_decide_announces_standbys_that_became_this_hosts() -> None:
    both = {"r1", "r2", "r3"}  # r1 was this host's; r2 stood by and is bound here now; r3 still stands by
    plan = decide(both, present=both, mine=frozenset({"r1", "r2"}), was_mine=frozenset({"r1"}))
    assert (plan.build, plan.remove, plan.announce) == ((), (), ("r2",))
    unbuilt = decide(both, present={"r1"}, mine=frozenset({"r1", "r2"}), was_mine=frozenset({"r1"}))
    assert (unbuilt.build, unbuilt.announce) == (("r2", "r3"), ())  # built, and announced by the build
    back = decide(both, present=both, mine=frozenset(), was_mine=frozenset({"r1"}))  # r1 moved away
    assert (back.remove, back.demote) == ((), ("r1",))


def test_external_range_too_small_for_the_floating_ips(write_inventory: Callable[[str], Path]) -> None:
    text = (Path(__file__).resolve().parents[2] / "examples" / "paper.yaml").read_text()
    path = write_inventory(text.replace("external_cidr: 10.244.0.0/21", "external_cidr: 10.244.0.0/26"))
    with pytest.raises(InventoryError, match=r"lab.external_cidr: 10.244.0.0/26 is too small"):
        load_deployment(path)
