"""The kernel limits `bench scale` raises for a run: enough for the routers, in an order the kernel takes."""

from __future__ import annotations

from hastack.bench.scale import kernel_limits


def test_the_limits_grow_with_the_routers_and_gc_thresh3_is_raised_before_gc_thresh2() -> None:
    limits = kernel_limits(1000)
    names = [name for name, _ in limits]
    assert names.index("net.ipv4.neigh.default.gc_thresh3") < names.index("net.ipv4.neigh.default.gc_thresh2")
    wanted = dict(limits)
    assert wanted["net.ipv4.neigh.default.gc_thresh2"] <= wanted["net.ipv4.neigh.default.gc_thresh3"]
    # A broadcast is copied to every router port through one CPU's backlog: room for all of them and more.
    assert wanted["net.core.netdev_max_backlog"] > 1000 * 2
    assert dict(kernel_limits(54))["net.core.netdev_max_backlog"] < wanted["net.core.netdev_max_backlog"]
