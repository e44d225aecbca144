"""The analysis as a picture: hosts, the components they run, and the components' dependencies on the
database and the message queue, coloured by severity. Pure: returns Graphviz DOT text; the CLI renders it.

Hosts that run the same components are drawn as one node ("ctl1, ctl2, ctl3") so that a deployment of
many hosts stays readable. A host node's colour is the severity of that host failing; a component's colour
is the worst severity any single failure gives it (green: every single failure is masked).
"""

from __future__ import annotations

from hastack.analysis.report import Analysis
from hastack.catalog import Mechanism, Scope, Severity, component
from hastack.model import Deployment

COLOURS = {
    Severity.NONE: "#b7e4b0",
    Severity.LOW: "#fff2a8",
    Severity.MEDIUM: "#ffc27a",
    Severity.HIGH: "#f28b82",
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(dep: Deployment, analysis: Analysis) -> str:
    host_severity = {o.failure.label.removeprefix("host "): o.severity for o in analysis.hosts}
    spof = {s.component: s.severity for s in analysis.spofs}
    # A per-host component always hurts its own host when it fails, whatever else fails with it.
    local = {c: component(c).severity for c in dep.components() if component(c).scope is Scope.HOST}
    backbone = [c for c in ("database", "rabbitmq") if dep.is_deployed(c)]
    lines = [
        "digraph hastack {",
        "  graph [rankdir=LR, nodesep=0.25, ranksep=1.4, fontname=Helvetica, fontsize=18, labelloc=t,",
        f"         label={_quote(f'hastack analyze: {dep.name} (colour = severity if it fails)')}];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=11];',
        '  edge [color="#777777", arrowsize=0.6];',
    ]
    groups: dict[tuple[str, ...], list[str]] = {}
    for h in dep.hosts:
        groups.setdefault(dep.components_on(h.name), []).append(h.name)
    lines.append('  subgraph cluster_hosts { label="hosts"; style=dashed;')
    for i, names in enumerate(groups.values()):
        roles = ", ".join(dict.fromkeys(r.value for n in names for r in dep.host(n).roles))
        worst = max((host_severity[n] for n in names), key=lambda s: s.rank)
        label = f"{', '.join(names)}\n[{roles}]\nfails: {worst.value}"
        lines.append(f"    g{i} [label={_quote(label)}, fillcolor={_quote(COLOURS[worst])}, fontsize=13];")
    lines.append("  }")
    for name in dep.components():
        sev = spof.get(name, local.get(name, Severity.NONE))
        mech = component(name).mechanism
        label = (
            f"{name} x{len(dep.hosts_of(name))}\n{'no failover' if mech is Mechanism.NONE else mech.value}"
        )
        if name in spof:
            label += f"\nSPOF ({sev.value})"
        elif name in local:
            label += "\n(down on its own host only)"
        border = ', penwidth=3, color="#b00020"' if name in spof else ""
        shape = ", shape=cylinder, fontsize=13" if name in backbone else ""
        lines.append(
            f"  {_quote(name)} [label={_quote(label)}, fillcolor={_quote(COLOURS[sev])}{border}{shape}];"
        )
    if backbone:
        lines.append(f"  {{ rank=sink; {' '.join(_quote(b) for b in backbone)} }}")
    for i, (comps, _names) in enumerate(groups.items()):
        lines += [f"  g{i} -> {_quote(c)};" for c in comps if c not in backbone]
        lines += [f"  g{i} -> {_quote(c)} [constraint=false];" for c in comps if c in backbone]
    for name in dep.components():
        comp = component(name)
        for flag, target in ((comp.uses_db, "database"), (comp.uses_mq, "rabbitmq")):
            if flag and target != name and dep.is_deployed(target):
                lines.append(f'  {_quote(name)} -> {_quote(target)} [style=dashed, color="#3366cc"];')
    lines += _legend()
    lines.append("}")
    return "\n".join(lines) + "\n"


def _legend() -> list[str]:
    rows = "".join(f'<TR><TD BGCOLOR="{COLOURS[s]}">{s.value}</TD></TR>' for s in Severity)
    table = (
        '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0"><TR><TD><B>severity</B></TD></TR>'
        f"{rows}<TR><TD>blue dashed: uses DB / MQ</TD></TR><TR><TD>red border: SPOF</TD></TR></TABLE>>"
    )
    return [f'  legend [shape=plaintext, style="", label={table}];']
