"""`hastack bench chaos`: the fault campaign, with a progress bar and a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hastack.bench import campaign, chaos, chaosplot, report
from hastack.cli import output
from hastack.cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, CliError
from hastack.lab.plan import LabPlan, plan
from hastack.lab.state import LabState
from hastack.model import load_deployment


def _lab(inventory: Path | None) -> tuple[LabPlan, str]:
    state = LabState.load()
    if state.is_empty:
        raise CliError("no lab is up: run `hastack lab up INVENTORY` first", EXIT_BAD_INPUT)
    path = str(inventory) if inventory is not None else state.inventory
    dep = load_deployment(path)
    if state.deployment != dep.name:
        raise CliError(f"the lab that is up is not deployment {dep.name!r} of {path}", EXIT_BAD_INPUT)
    # The lab runs from the inventory it was brought up with (a profile's copy, say): faults and the
    # controllers' view are read through that one.
    return plan(load_deployment(state.inventory)), state.inventory


@click.command(name="chaos")
@click.argument("inventory", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--faults",
    "count",
    type=click.IntRange(1, 5000),
    help="How many faults [default: 20; with --replay, its whole schedule, or its first N].",
)
@click.option(
    "--seed",
    default=1,
    show_default=True,
    type=int,
    help="The schedule's seed: the same seed, the same campaign.",
)
@click.option(
    "--duration", type=click.FloatRange(1, 86_400), help="Only the faults that start within S seconds."
)
@click.option(
    "--max-active",
    default=2,
    show_default=True,
    type=click.IntRange(1, 5),
    help="Faults active at once at most.",
)
@click.option(
    "--replay",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Rerun the schedule of an earlier campaign's chaos.json exactly.",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    default=Path("results"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where chaos.json, chaos.png and REPORT.md go.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the invariants as JSON.")
def chaos_(
    inventory: Path | None,
    count: int | None,
    seed: int,
    duration: float | None,
    max_active: int,
    replay: Path | None,
    out_dir: Path,
    as_json: bool,
) -> None:
    """Random, overlapping faults on the lab that is up (any host, any service `hastack lab fail` can hit,
    network nodes cut off from etcd or the controllers, etcd minority splits, packet loss) and operators'
    requests (`hastack ctl move`, `rebalance`, `drain`, `policy`), each held a few seconds and healed,
    while every VM is pinged, Keystone read, Galera written and a quorum queue fed.
    Checks that no router forwarded on two nodes, no acknowledged commit or confirmed message was lost,
    every fault the analysis tolerates was recovered from within its goal, and the lab is whole afterwards
    (`lab verify` passes, no namespace, process or fault left behind). Exit status 1 on a breach,
    with the shortest prefix of the schedule to replay. INVENTORY: the lab's (default: the one that is up).

    Example: hastack bench chaos examples/paper.yaml --faults 200 --seed 1 -o results
    """
    p, inventory_path = _lab(inventory)
    if replay is not None:
        try:
            seed, schedule = campaign.load_schedule(replay)
        except ValueError as e:
            raise CliError(str(e), EXIT_BAD_INPUT) from e
        schedule = schedule[:count] if count is not None else schedule
    else:
        actions = campaign.menu(p, inventory_path)
        shape = chaos.Shape(max_active=max_active)
        schedule = chaos.draw(p.deployment, actions, count or 20, seed, shape)
    if duration is not None:
        schedule = tuple(x for x in schedule if x.start_s < duration)
    result = _run(p, inventory_path, schedule, seed)
    path = _write(result, out_dir)
    _say(result, path, replay or path, as_json)


def run_campaign(lab: LabPlan, count: int, seed: int, out_dir: Path) -> dict[str, Any]:
    """A fresh campaign of `count` faults on the lab that is up, written to `out_dir` (for `bench all`)."""
    state = LabState.load()
    schedule = chaos.draw(lab.deployment, campaign.menu(lab, state.inventory), count, seed)
    result = _run(lab, state.inventory, schedule, seed)
    _write(result, out_dir)
    return result


def _write(result: dict[str, Any], out_dir: Path) -> Path:
    path = campaign.write(result, out_dir)
    chaosplot.plot(result, out_dir / "chaos.png")
    report.write(out_dir)
    return path


def _run(lab: LabPlan, inventory: str, schedule: tuple[chaos.Planned, ...], seed: int) -> dict[str, Any]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=output.stderr_console(), transient=False) as bar:
        task = bar.add_task(
            f"chaos: {len(schedule)} faults, about {chaos.duration_s(schedule):.0f} s", total=len(schedule)
        )

        def progress(done: int, total: int, said: str) -> None:
            bar.update(task, completed=done)
            bar.console.print(said, highlight=False)

        return campaign.run(lab, inventory, schedule, seed, progress)


def _say(result: dict[str, Any], path: Path, replay: Path, as_json: bool) -> None:
    inv = result["invariants"]
    if as_json:
        output.print_json(inv)
    else:
        click.echo(
            f"dual-active {inv['dual_active_s']} s (forwarded {inv['dual_forwarding_s']} s); lost commits "
            f"{inv['lost_commits']}, lost messages {inv['lost_messages']}; "
            f"VMs never back {inv['unrecovered']}; {len(inv['beyond_tolerance'])} faults beyond tolerance, "
            f"{inv['skipped']} skipped"
        )
        for kind, g in inv["gap_s"].items():
            click.echo(
                f"  {kind:<28} {g['faults']:>3} faults  gap median {g['median_s']} s, "
                f"worst {g['worst_s']} s; Keystone failing at worst {g.get('keystone_worst_s', 0.0)} s"
            )
        click.echo(f"wrote {path}, {path.parent / 'chaos.png'} and {path.parent / 'REPORT.md'}")
    if inv["breaches"]:
        for b in inv["breaches"]:
            click.echo(f"BREACH #{b['index']} {b['fault']}: {b['breach']}", err=True)
        first = min((b["index"] for b in inv["breaches"] if b["index"] is not None), default=None)
        if first is not None:
            click.echo(
                f"shortest prefix that shows it: hastack bench chaos --replay {replay} --faults {first + 1}",
                err=True,
            )
        raise CliError(f"{len(inv['breaches'])} invariant breach(es)", EXIT_FAILED)
