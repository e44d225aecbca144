"""`hastack bench`: experiments on a lab that is up (`hastack lab up` first)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from hastack.bench import experiment
from hastack.bench.failover import SCENARIOS
from hastack.cli import output
from hastack.cli.errors import EXIT_BAD_INPUT, CliError
from hastack.controller.service import POLICIES
from hastack.lab.plan import plan
from hastack.lab.state import LabState
from hastack.model import load_deployment


@click.group()
def bench() -> None:
    """Measure failover on the lab, the way the seed's Figure 4 does, and more."""


@bench.command()
@click.argument("inventory", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--policy",
    "policies",
    multiple=True,
    type=click.Choice(POLICIES),
    help="Policies to compare (repeatable; default: all three, in one run on one lab).",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(sorted(SCENARIOS)),
    help="Failures to inject (repeatable; default: all three).",
)
@click.option(
    "--repeat",
    default=5,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Trials per scenario for policy hastack.",
)
@click.option(
    "--repeat-anchors",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Trials per scenario for the anchors (paper: ~70 s each, neutron: ~2.5 min each).",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    default=Path("results"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where failover.json and .png go.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def failover(
    inventory: Path,
    policies: tuple[str, ...],
    scenarios: tuple[str, ...],
    repeat: int,
    repeat_anchors: int,
    out_dir: Path,
    as_json: bool,
) -> None:
    """Kill a network node's L3 agent, cut the node, freeze it; ping a VM's floating IP every 100 ms and
    sample every router's kernel gate meanwhile. Reports the connectivity gap and dual-active time.

    Example: hastack bench failover examples/paper.yaml --policy hastack --repeat 3
    """
    dep = load_deployment(inventory)
    state = LabState.load()
    if state.deployment != dep.name:
        raise CliError(
            f"no lab of deployment {dep.name!r} is up: run `hastack lab up {inventory}` first", EXIT_BAD_INPUT
        )
    started = time.monotonic()

    def progress(line: str) -> None:
        click.echo(f"[{time.monotonic() - started:7.1f}s] {line}", err=True)

    chosen = list(policies) or list(POLICIES)
    result = experiment.run(
        plan(dep),
        str(inventory),
        chosen,
        list(scenarios) or ["l3-kill", "node-cut", "node-freeze"],
        {p: (repeat if p == "hastack" else repeat_anchors) for p in chosen},
        out_dir,
        progress,
    )
    if as_json:
        output.print_json(result["summary"])
        return
    for row in result["summary"]:
        goal = f" (goal <= {row['goal_s']} s)" if row["goal_s"] else ""
        click.echo(
            f"{row['policy']:<8} {row['scenario']:<12} median gap {row['median_gap_s']} s, worst "
            f"{row['worst_gap_s']} s{goal}; never back {row['never_back']}; worst dual-active "
            f"{row['worst_dual_active_s']} s"
        )
    click.echo(f"wrote {out_dir / 'failover.json'} and {out_dir / 'failover.png'}")
