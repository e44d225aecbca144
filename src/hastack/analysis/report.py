"""The analysis report of a deployment: every single host and instance failure, the single points of
failure, and every pair of host failures (the paper's claim: hosts of different roles may fail together).
Pure: a Deployment in, an Analysis out; `to_dict` gives the JSON shape of `hastack analyze --json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

from hastack.analysis.impact import Effect, Failure, Outcome, Status, evaluate
from hastack.catalog import Severity, component
from hastack.model import Deployment


@dataclass(frozen=True)
class Spof:
    """A component that one failure makes unavailable by itself (not only through a dependency)."""

    component: str
    severity: Severity
    failures: tuple[str, ...]


@dataclass(frozen=True)
class Analysis:
    deployment: str
    hosts: tuple[Outcome, ...]
    instances: tuple[Outcome, ...]
    spofs: tuple[Spof, ...]
    pairs_different_roles: tuple[Outcome, ...]
    pairs_same_role: tuple[Outcome, ...]

    @property
    def untolerated_pairs(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.pairs_different_roles if not o.is_tolerated)

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "host_failures": [_outcome_dict(o) for o in self.hosts],
            "instance_failures": [_outcome_dict(o) for o in self.instances],
            "single_points_of_failure": [
                {"component": s.component, "severity": s.severity.value, "failures": list(s.failures)}
                for s in self.spofs
            ],
            "host_pairs": {
                "different_roles": {
                    "checked": len(self.pairs_different_roles),
                    "not_tolerated": [_outcome_dict(o) for o in self.untolerated_pairs],
                },
                "same_role": {
                    "checked": len(self.pairs_same_role),
                    "not_tolerated": [_outcome_dict(o) for o in self.pairs_same_role if not o.is_tolerated],
                },
            },
        }


def analyze(dep: Deployment) -> Analysis:
    hosts = tuple(evaluate(dep, Failure(f"host {h.name}", hosts=frozenset({h.name}))) for h in dep.hosts)
    instances = tuple(
        evaluate(dep, Failure(f"{c} on {h}", instances=frozenset({(c, h)})))
        for c in dep.components()
        for h in dep.hosts_of(c)
    )
    different: list[Outcome] = []
    same: list[Outcome] = []
    for a, b in combinations(dep.hosts, 2):
        outcome = evaluate(dep, Failure(f"hosts {a.name} + {b.name}", hosts=frozenset({a.name, b.name})))
        (same if set(a.roles) & set(b.roles) else different).append(outcome)
    return Analysis(
        deployment=dep.name,
        hosts=hosts,
        instances=instances,
        spofs=single_points_of_failure(hosts + instances),
        pairs_different_roles=tuple(different),
        pairs_same_role=tuple(same),
    )


def single_points_of_failure(single_failures: tuple[Outcome, ...]) -> tuple[Spof, ...]:
    """Components LOST through their own replicas in some single failure, worst first."""
    found: dict[str, list[str]] = {}
    for outcome in single_failures:
        for e in outcome.lost:
            if not e.cause.startswith("needs "):
                found.setdefault(e.component, []).append(outcome.failure.label)
    spofs = [Spof(c, component(c).severity, tuple(labels)) for c, labels in found.items()]
    return tuple(sorted(spofs, key=lambda s: (-s.severity.rank, s.component)))


def _outcome_dict(o: Outcome) -> dict[str, Any]:
    return {
        "failure": o.failure.label,
        "hosts": sorted(o.failure.hosts),
        "instances": [list(i) for i in sorted(o.failure.instances)],
        "severity": o.severity.value,
        "tolerated": o.is_tolerated,
        "effects": [_effect_dict(e) for e in o.effects],
    }


def _effect_dict(e: Effect) -> dict[str, Any]:
    return {
        "component": e.component,
        "status": e.status.value,
        "live": e.live,
        "total": e.total,
        "masked_by": e.masked_by if e.status is Status.DEGRADED else None,
        "cause": e.cause,
        "severity": e.severity.value,
    }
