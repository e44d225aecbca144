"""Failure-impact analysis: which components a failure takes down or weakens, and what masks it. Pure.

A failure is a set of failed hosts and failed service instances. Each deployed component then is
- OK: every instance alive;
- DEGRADED: instances lost, but its mechanism masks it (enough replicas, quorum held, routers rescheduled);
- LOCAL: a per-host component (nova-compute, the hypervisor, ...) is down on its own host only;
- LOST: unavailable for the whole cloud, by its own replicas or because something it needs is LOST.
The failure's severity is the worst catalog severity among LOST and LOCAL components (the paper's Table 1
classes); a failure whose effects are all OK or DEGRADED is masked (severity "none").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from hastack.catalog import Mechanism, Scope, Severity, component
from hastack.model import Deployment
from hastack.model.endpoints import grant_timing


class Status(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    LOCAL = "local"
    LOST = "lost"


@dataclass(frozen=True)
class Failure:
    """What failed: whole hosts and/or single (component, host) instances."""

    label: str
    hosts: frozenset[str] = frozenset()
    instances: frozenset[tuple[str, str]] = frozenset()

    def kills(self, comp: str, host: str) -> bool:
        return host in self.hosts or (comp, host) in self.instances


@dataclass(frozen=True)
class Effect:
    component: str
    status: Status
    live: int
    total: int
    masked_by: str
    cause: str
    severity: Severity


_EffectFn = Callable[[str], Effect]


@dataclass(frozen=True)
class Outcome:
    failure: Failure
    effects: tuple[Effect, ...]

    @property
    def severity(self) -> Severity:
        hurt = [e.severity for e in self.effects if e.status in (Status.LOST, Status.LOCAL)]
        return max(hurt, key=lambda s: s.rank, default=Severity.NONE)

    @property
    def lost(self) -> tuple[Effect, ...]:
        return tuple(e for e in self.effects if e.status is Status.LOST)

    @property
    def is_tolerated(self) -> bool:
        """No cluster-wide loss; a per-host component down on its own failed host is tolerated."""
        return not self.lost


def dependencies(dep: Deployment, name: str) -> tuple[str, ...]:
    """What `name` cannot work without: the DB and MQ (per Table 1), the VIP's HAProxy, the store."""
    comp = component(name)
    needs = []
    if comp.uses_db and name != "database":
        needs.append("database")
    if comp.uses_mq and name != "rabbitmq":
        needs.append("rabbitmq")
    if comp.is_load_balanced and len(dep.hosts_of(name)) > 1:
        needs.append("haproxy")
    if name == "hastack-controller":
        needs.append("etcd")
    return tuple(d for d in needs if dep.is_deployed(d))


def evaluate(dep: Deployment, failure: Failure) -> Outcome:
    """The effect of `failure` on every deployed component it touches, directly or through a dependency."""
    memo: dict[str, Effect] = {}

    def effect(name: str) -> Effect:
        if name not in memo:
            memo[name] = _effect(dep, failure, name, effect)
        return memo[name]

    effects = tuple(e for e in (effect(c) for c in dep.components()) if e.status is not Status.OK)
    return Outcome(failure=failure, effects=effects)


def _live_hosts(dep: Deployment, failure: Failure, name: str) -> list[str]:
    live = [h for h in dep.hosts_of(name) if not failure.kills(name, h)]
    if name == "haproxy" and dep.is_deployed("keepalived"):
        # The VIP only lands where keepalived runs beside a live HAProxy (its track script drops it there).
        live = [h for h in live if not failure.kills("keepalived", h)]
    if name == "l3-agent":
        # A network node whose node agent is down shuts its gates once its lease runs out: its routers
        # forward nowhere until they move (found by the fault campaign: both node agents down at once).
        guarded = set(dep.hosts_of("hastack-agent"))
        live = [h for h in live if h not in guarded or not failure.kills("hastack-agent", h)]
    return live


def _effect(dep: Deployment, failure: Failure, name: str, effect_of: _EffectFn) -> Effect:
    comp = component(name)
    total = len(dep.hosts_of(name))
    live = len(_live_hosts(dep, failure, name))
    for needed in dependencies(dep, name):
        if effect_of(needed).status is Status.LOST:
            return Effect(name, Status.LOST, live, total, "none", f"needs {needed}", comp.severity)
    if name == "l3-agent" and (why := _grants_lost(dep, failure)):
        return Effect(name, Status.LOST, live, total, "none", why, comp.severity)
    if live == total:
        return Effect(name, Status.OK, live, total, "", "", Severity.NONE)
    if comp.scope is Scope.HOST:
        return Effect(
            name, Status.LOCAL, live, total, "none", "down on the failed host(s) only", comp.severity
        )
    masked, cause = _is_masked(dep, failure, name, live, total, effect_of)
    if masked:
        return Effect(name, Status.DEGRADED, live, total, comp.mechanism.value, cause, Severity.NONE)
    return Effect(name, Status.LOST, live, total, "none", cause, comp.severity)


def _grants_lost(dep: Deployment, failure: Failure) -> str:
    """With grants on, every guarded network node's gates need grants from a majority of the controller
    processes (not of etcd: grants go on without it): why they shut, or "" if a majority is up."""
    if grant_timing(dep) is None or not dep.is_deployed("hastack-agent"):
        return ""
    controllers = dep.hosts_of("hastack-controller")
    live = [h for h in controllers if not failure.kills("hastack-controller", h)]
    if 2 * len(live) > len(controllers):
        return ""
    return f"every gate shut: grants need a majority of controllers ({len(live)} of {len(controllers)})"


def _is_masked(
    dep: Deployment, failure: Failure, name: str, live: int, total: int, effect_of: _EffectFn
) -> tuple[bool, str]:
    """Whether the component's mechanism hides the loss of `total - live` instances, and why (not)."""
    mech = component(name).mechanism
    if mech.is_quorum:
        if 2 * live > total:
            return True, f"quorum held ({live} of {total})"
        return False, f"quorum lost ({live} of {total})"
    if live == 0:
        return False, f"no replica left (0 of {total})"
    if mech is Mechanism.RESCHEDULE_FENCE:
        helpers = [h for h in ("hastack-controller", "etcd") if effect_of(h).status is not Status.LOST]
        if len(helpers) == 2 and dep.is_deployed("hastack-controller") and dep.is_deployed("etcd"):
            return True, f"routers rescheduled to the {live} remaining agent(s)"
        return False, "routers of the failed agent stay down: no hastack controller or etcd to move them"
    return True, f"{live} of {total} replicas remain"
