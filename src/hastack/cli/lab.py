"""`hastack lab ...`: bring a deployment up on this machine, inspect it, run commands in it, tear it down."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import click

from hastack.cli import output
from hastack.lab import realise
from hastack.lab.plan import LabPlan, plan
from hastack.lab.state import LabState
from hastack.lab.system import LabError, in_netns
from hastack.model import load_deployment

DEFAULT_INVENTORY = Path(__file__).resolve().parents[3] / "examples" / "paper.yaml"
JSON = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def _progress(start: float) -> realise.Progress:
    def say(step: str) -> None:
        click.echo(f"[{time.monotonic() - start:6.1f}s] {step}", err=True)

    return say


def _current() -> tuple[LabState, LabPlan]:
    state = LabState.load()
    if not state.deployment:
        raise LabError("no lab is up (run `hastack lab up`)")
    return state, plan(load_deployment(state.inventory))


@click.group()
def lab() -> None:
    """Run a deployment on this machine: hosts as network namespaces, the real daemons inside.

    Needs root. Everything the lab makes is recorded in /run/hastack-lab/state.json and removed by
    `hastack lab down`.
    """


@lab.command()
@click.argument("inventory", required=False, type=click.Path(dir_okay=False, path_type=Path))
def up(inventory: Path | None) -> None:
    """Bring the lab up from INVENTORY (default: examples/paper.yaml). Idempotent: running it again
    completes or repairs a lab that is already (partly) up.

    Example: hastack lab up examples/paper.yaml
    """
    inventory = (inventory or DEFAULT_INVENTORY).resolve()
    start = time.monotonic()
    realise.up(plan(load_deployment(inventory)), LabState.load(), str(inventory), _progress(start))
    click.echo(f"lab up in {time.monotonic() - start:.1f} s")


@lab.command()
def down() -> None:
    """Remove every namespace, link, directory and process the lab made. Safe to run twice.

    Example: hastack lab down
    """
    start = time.monotonic()
    realise.down(LabState.load(), _progress(start))
    click.echo(f"lab down in {time.monotonic() - start:.1f} s")


@lab.command()
@JSON
def status(as_json: bool) -> None:
    """Show the lab's hosts, daemons and their health.

    Example: hastack lab status --json
    """
    state, p = _current()
    data = realise.status(p, state)
    if as_json:
        output.print_json(data)
        return
    out = output.console()
    out.print(f"lab of deployment [bold]{data['deployment']}[/]")
    for h in data["hosts"]:
        out.print(f"  host {h['host']:<8} {h['address']:<15} {'up' if h['up'] else '[red]missing[/]'}")
    for pr in data["processes"]:
        out.print(
            f"  {pr['name']:<10} on {pr['host']:<8} pid {pr['pid']:<8} "
            f"{'running' if pr['alive'] else '[red]dead[/]'}"
        )
    out.print(f"  etcd: {'[green]healthy[/]' if data['etcd_healthy'] else '[red]unhealthy[/]'}")


@lab.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(host: str, command: tuple[str, ...]) -> int:
    """Run COMMAND inside HOST's namespaces; exits with COMMAND's status.

    Example: hastack lab exec db1 -- ip addr
    """
    _state, p = _current()
    if host not in {h.name for h in p.hosts}:
        raise click.BadParameter(f"no host {host!r} in the lab", param_hint="HOST")
    return subprocess.run(in_netns(p.host(host).netns, command), check=False).returncode
