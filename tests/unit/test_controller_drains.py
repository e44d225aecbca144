"""The leader's HAProxy drains (controller/drains.py), through its tick: reconciled into every balancer, in
a thread of their own."""

from __future__ import annotations

import threading

import pytest

from hastack.controller.service import Controller
from tests.unit.test_controller_service import FakeBalancer, World


@pytest.fixture
def w() -> World:
    return World()


def _drained(ctl: Controller) -> str:
    """The tick after the one whose drains thread ran to its end: what it says of the drains."""
    ctl.tick()
    assert ctl.drains.thread is not None
    ctl.drains.thread.join(5)
    return ctl.tick()


def test_drain_is_reconciled_into_every_balancer(w: World) -> None:
    ctl = w.controller("ctl1")
    ctl.drain("ctl1", True)
    assert _drained(ctl).endswith("; 1 HAProxy servers set")
    assert w.lb.state[("keystone", "ctl1")] == "DRAIN"
    ctl.drain("ctl1", False)
    _drained(ctl)
    assert w.lb.state[("keystone", "ctl1")] == "UP"
    with pytest.raises(ValueError, match="net1 serves no API"):
        ctl.drain("net1", True)


class FrozenBalancer(FakeBalancer):
    """An HAProxy whose host is frozen: its runtime API answers nothing until `thaw` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.thaw, self.asked = threading.Event(), threading.Event()

    def servers(self) -> list[dict[str, str]]:
        self.asked.set()
        self.thaw.wait(30)
        return super().servers()


def test_a_frozen_haproxy_does_not_hold_up_the_leaders_tick(w: World) -> None:
    """The tick renews the leader's lease: one that waited for a frozen HAProxy lost the lead."""
    frozen = FrozenBalancer()
    ctl = w.controller("ctl1")
    ctl.drains.balancers = [frozen]
    ctl.drain("ctl1", True)
    ticked = threading.Thread(target=ctl.tick)
    ticked.start()
    assert frozen.asked.wait(5)
    ticked.join(5)
    assert not ticked.is_alive()  # the tick returned while HAProxy still answers nothing
    assert ctl.tick() == "all 3 network nodes healthy"  # nothing to say yet, and no second thread
    frozen.thaw.set()
    assert ctl.drains.thread is not None
    ctl.drains.thread.join(5)
    assert ctl.tick().endswith("; 1 HAProxy servers set")
    assert frozen.state[("keystone", "ctl1")] == "DRAIN"
