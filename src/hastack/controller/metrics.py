"""The controller's Prometheus metrics, in a registry of its own (served on GET /metrics)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hastack.controller.act import Outcome


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.leader = Gauge(
            "hastack_controller_leader", "1 while this controller leads", registry=self.registry
        )
        self.ticks = Counter("hastack_controller_ticks", "Ticks that decided", registry=self.registry)
        self.tick_seconds = Histogram(
            "hastack_controller_tick_seconds",
            "Duration of a deciding tick (observe, decide, act)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.moves = Counter(
            "hastack_router_moves", "Router moves by result", ["result"], registry=self.registry
        )
        self.move_seconds = Histogram(
            "hastack_router_move_seconds",
            "Duration of one router move through the network backend",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )

    def tick(self, seconds: float, leading: bool, outcomes: Sequence[Outcome]) -> None:
        self.leader.set(1 if leading else 0)
        self.ticks.inc()
        self.tick_seconds.observe(seconds)
        for o in outcomes:
            self.moves.labels("failed" if o.error else "done").inc()
            self.move_seconds.observe(o.seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
