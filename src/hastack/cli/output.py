"""Terminal presentation of hastack's results (rich tables). Only formatting: no decisions here."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from hastack.analysis import Analysis, Outcome, Status
from hastack.catalog import CATALOG, Severity

STYLE = {
    Severity.NONE: "green",
    Severity.LOW: "yellow",
    Severity.MEDIUM: "dark_orange",
    Severity.HIGH: "bold red",
}


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    """For progress: on stderr, so that stdout holds only the result."""
    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def sev(s: Severity) -> str:
    return f"[{STYLE[s]}]{s.value}[/]"


def _mark(flag: bool) -> str:
    return "x" if flag else ""


def catalog_table() -> Table:
    t = Table(title="hastack component catalog (rows marked * are the paper's Table 1)")
    for col in ("component", "Table 1 row", "severity", "DB", "MQ", "stateful", "HA mechanism", "roles"):
        t.add_column(col)
    for c in CATALOG:
        t.add_row(
            c.name,
            f"* {c.table1}" if c.table1 else f"({c.source})",
            sev(c.severity),
            _mark(c.uses_db),
            _mark(c.uses_mq),
            _mark(c.stateful),
            c.mechanism.value,
            "/".join(c.roles),
        )
    return t


def _effects(o: Outcome, status: Status) -> str:
    return ", ".join(f"{e.component} ({e.cause})" for e in o.effects if e.status is status)


def host_table(a: Analysis) -> Table:
    t = Table(title="Single host failures")
    for col in ("host", "severity", "lost (cluster-wide)", "down on that host only", "masked: degraded"):
        t.add_column(col, overflow="fold")
    for o in a.hosts:
        masked = ", ".join(
            f"{e.component} {e.live}/{e.total}" for e in o.effects if e.status is Status.DEGRADED
        )
        t.add_row(
            o.failure.label.removeprefix("host "),
            sev(o.severity),
            _effects(o, Status.LOST),
            ", ".join(e.component for e in o.effects if e.status is Status.LOCAL),
            masked,
        )
    return t


def instance_table(a: Analysis) -> Table:
    hurt = [o for o in a.instances if o.severity is not Severity.NONE]
    t = Table(
        title=f"Single service-instance failures: {len(a.instances) - len(hurt)} of {len(a.instances)} "
        "masked; the others:"
    )
    for col in ("instance", "severity", "lost", "local"):
        t.add_column(col, overflow="fold")
    for o in hurt:
        t.add_row(o.failure.label, sev(o.severity), _effects(o, Status.LOST), _effects(o, Status.LOCAL))
    return t


def mechanism_table(a: Analysis) -> Table:
    t = Table(title="What masks each single failure")
    for col in ("component", "mechanism", "worst single failure leaves"):
        t.add_column(col)
    seen: dict[str, tuple[str, int, int]] = {}
    for o in a.hosts + a.instances:
        for e in o.effects:
            if e.status is Status.DEGRADED and (e.component not in seen or e.live < seen[e.component][1]):
                seen[e.component] = (e.masked_by, e.live, e.total)
    for comp, (mech, live, total) in seen.items():
        t.add_row(comp, mech, f"{live} of {total}")
    return t


def spof_table(a: Analysis) -> Table:
    t = Table(title="Single points of failure")
    for col in ("component", "severity", "taken down by"):
        t.add_column(col, overflow="fold")
    for s in a.spofs:
        t.add_row(s.component, sev(s.severity), ", ".join(s.failures))
    return t


def pair_table(a: Analysis) -> Table:
    bad = a.untolerated_pairs
    t = Table(
        title=f"Two hosts of different roles failing together: {len(a.pairs_different_roles)} pairs, "
        f"{len(bad)} not tolerated"
    )
    for col in ("hosts", "severity", "lost"):
        t.add_column(col, overflow="fold")
    for o in bad:
        t.add_row(o.failure.label.removeprefix("hosts "), sev(o.severity), _effects(o, Status.LOST))
    return t


def print_analysis(a: Analysis) -> None:
    out = console()
    out.print(f"[bold]hastack analyze[/]: deployment [bold]{a.deployment}[/]\n")
    out.print(host_table(a))
    out.print(
        instance_table(a)
        if any(o.severity is not Severity.NONE for o in a.instances)
        else f"All {len(a.instances)} single service-instance failures are masked."
    )
    if any(e.status is Status.DEGRADED for o in a.hosts + a.instances for e in o.effects):
        out.print(mechanism_table(a))
    if a.spofs:
        out.print(spof_table(a))
    if not a.pairs_different_roles:
        out.print("No two hosts hold different roles: there are no pairs to check.")
    elif a.untolerated_pairs:
        out.print(pair_table(a))
    else:
        out.print(f"All {len(a.pairs_different_roles)} pairs of hosts in different roles are tolerated.")
    worst = max((s.severity for s in a.spofs), key=lambda s: s.rank, default=Severity.NONE)
    verdict = (
        f"[bold red]{len(a.spofs)} single point(s) of failure, worst {worst.value}[/]"
        if a.spofs
        else "[bold green]no single point of failure[/]"
    )
    out.print(f"\nVerdict: {verdict}.")
