"""`hastack lab ...`: bring a deployment up on this machine, inspect it, run commands in it, tear it down."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import click

from hastack.cli import files, output
from hastack.cli.errors import EXIT_BAD_INPUT, CliError
from hastack.lab import faults, l3agent, realise
from hastack.lab.plan import LabPlan, plan
from hastack.lab.state import STATE_FILE, LabState, locked
from hastack.lab.system import LabError, in_netns
from hastack.lab.verify import verify
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
@click.option(
    "--profile",
    type=click.Choice(["lab", "openstack"]),
    help="lab: the lab's own L3 agents; openstack: real Neutron (server, Open vSwitch, L3 and DHCP "
    "agents). Default: the inventory's lab.profile.",
)
def up(inventory: Path | None, profile: str | None) -> None:
    """Bring the lab up from INVENTORY (default: the inventory of the lab that is up, else
    examples/paper.yaml). Idempotent: running it again completes or repairs a lab that is already
    (partly) up.

    With --profile, the lab runs from a copy of INVENTORY with that lab.profile
    (/run/hastack-lab/inventory-PROFILE.yaml), which its daemons read too.

    Example: hastack lab up examples/paper.yaml --profile openstack
    """
    if inventory is None and not DEFAULT_INVENTORY.exists():
        raise CliError(
            "no INVENTORY given and examples/paper.yaml is not beside this installation", EXIT_BAD_INPUT
        )
    current = LabState.load().inventory
    if inventory is None and profile is None and current:
        inventory = Path(current)  # complete or repair the lab that is up, from its own inventory
    inventory = (inventory or DEFAULT_INVENTORY).resolve()
    start = time.monotonic()
    dep = load_deployment(inventory)
    if profile is not None and dep.inventory.lab.profile != profile:
        inventory = files.with_lab_profile(inventory, profile, STATE_FILE.parent)
        dep = load_deployment(inventory)
    lab_plan = plan(dep)
    with locked():
        realise.up(lab_plan, LabState.load(), str(inventory), _progress(start))
    click.echo(f"lab up in {time.monotonic() - start:.1f} s")


@lab.command()
def down() -> None:
    """Remove every namespace, link, directory and process the lab made. Safe to run twice.

    Example: hastack lab down
    """
    start = time.monotonic()
    with locked():
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
    for fault in data["faults"]:
        out.print(f"  [yellow]fault[/]: {fault['kind']} {fault['target']}")
    out.print(f"  memory: {data['memory_mb']} MB (proportional set size of every lab process)")
    service = data.get("network_service", {})
    for agent in service.get("agents", []):
        routers = service["routers_by_agent"].get(agent["host"], [])
        alive = "alive" if agent["alive"] else "[red]dead[/]"
        out.print(f"  L3 agent {agent['host']:<6} {alive:<5} {len(routers)} routers: {' '.join(routers)}")
    ctl = data.get("controller", {})
    if "error" in ctl:
        out.print(f"  HA controller: [red]{ctl['error']}[/]")
    elif ctl:
        out.print(
            f"  HA controller: {ctl['host']} leads, policy {ctl.get('policy')}; last tick: {ctl['last_tick']}"
        )
    if "vm_reachable" in data:
        silent = [vm for vm, ok in data["vm_reachable"].items() if not ok]
        out.print(
            f"  VMs answering on their floating IP: {len(data['vm_reachable']) - len(silent)} of "
            f"{len(data['vm_reachable'])}" + (f"; silent: {' '.join(silent)}" if silent else "")
        )


@lab.command()
@click.argument("kind", type=click.Choice(faults.KINDS))
@click.argument("target")
@click.option("--delay-ms", type=click.IntRange(0, 60_000), default=0, help="degrade: added delay.")
@click.option("--loss-pct", type=click.FloatRange(0, 100), default=0.0, help="degrade: packet loss.")
def fail(kind: str, target: str, delay_ms: int, loss_pct: float) -> None:
    """Inject a fault: kill or freeze SERVICE:HOST, freeze-host or cut HOST, partition HOST:HOST,
    degrade HOST. Recorded in `lab status`; `lab heal` reverses it.

    Example: hastack lab fail kill keystone:ctl1
    """
    with locked():
        state, p = _current()
        click.echo(faults.inject(p, state, faults.parse(p, kind, target, delay_ms, loss_pct)))


@lab.command()
@click.argument("target", required=False)
def heal(target: str | None) -> None:
    """Reverse the recorded faults (all, or those touching TARGET) and restart whatever is dead.

    Example: hastack lab heal ctl1
    """
    start = time.monotonic()
    with locked():
        state, p = _current()
        said = realise.heal(p, state, target, _progress(start))
    click.echo(f"healed {len(said)} fault(s); every daemon runs")


@lab.command(name="verify")
@JSON
def verify_(as_json: bool) -> None:
    """Check the lab with the real clients: etcd members, Galera cluster size, RabbitMQ nodes, the VIP,
    and `openstack user list` through the VIP. Exits 1 if any check fails.

    Example: hastack lab verify
    """
    _state, p = _current()
    checks = verify(p)
    if as_json:
        output.print_json([{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks])
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name:<9} {c.detail}")
    if not all(c.ok for c in checks):
        raise CliError(f"{sum(not c.ok for c in checks)} of {len(checks)} checks failed")


@lab.command(name="l3-agent")
@click.argument("inventory", type=click.Path(dir_okay=False, exists=True))
@click.argument("host")
def l3_agent(inventory: str, host: str) -> None:
    """Run the lab L3 agent of HOST (the lab's stand-in for neutron-l3-agent) in the foreground. `lab up`
    starts one per network node inside its namespace; run by hand only for debugging.

    Example: hastack lab l3-agent examples/paper.yaml net1
    """
    if host not in load_deployment(Path(inventory)).hosts_of("l3-agent"):
        raise CliError(f"{host} runs no l3-agent in {inventory}", EXIT_BAD_INPUT)
    l3agent.run_agent(inventory, host)


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
