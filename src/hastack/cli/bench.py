"""`hastack bench`: experiments on a lab that is up (`hastack lab up` first)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click

from hastack.bench import api, experiment, report, scale, stateful
from hastack.bench.failover import SCENARIOS
from hastack.cli import output
from hastack.cli.chaos import chaos_, run_campaign
from hastack.cli.errors import EXIT_BAD_INPUT, CliError
from hastack.cli.files import profile_inventory
from hastack.controller.decide import POLICIES
from hastack.lab.plan import LabPlan, plan
from hastack.lab.state import STATE_FILE, LabState
from hastack.lab.topology import ScaleError, scale_routers
from hastack.model import load_deployment


@click.group()
def bench() -> None:
    """Measure failover on the lab, the way the paper's Figure 4 does, and more."""


INVENTORY = click.argument("inventory", type=click.Path(dir_okay=False, exists=True, path_type=Path))
OUT = click.option(
    "-o",
    "--output",
    "out_dir",
    default=Path("results"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the JSON, the plots and REPORT.md go.",
)


def _lab_of(inventory: Path) -> LabPlan:
    dep = load_deployment(inventory)
    if LabState.load().deployment != dep.name:
        raise CliError(
            f"no lab of deployment {dep.name!r} is up: run `hastack lab up {inventory}` first", EXIT_BAD_INPUT
        )
    return plan(dep)


def _progress() -> Callable[[str], None]:
    started = time.monotonic()
    return lambda line: click.echo(f"[{time.monotonic() - started:7.1f}s] {line}", err=True)


@bench.command(name="l3")
@INVENTORY
@click.option(
    "--profile",
    type=click.Choice(["lab", "openstack"]),
    help="openstack: on the lab `lab up --profile openstack` made: real Neutron, policies hastack and "
    "neutron (Neutron's own allow_automatic_l3agent_failover, default timers: ~5.5 min a trial).",
)
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
    help="Failures to inject (repeatable; default: l3-kill, node-cut, node-freeze). Each holds, is healed "
    "inside the measured window and watched 4 s after the heal; etcd-quorum holds 30 s.",
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
    help="Trials per scenario for the anchors (paper: ~70 s each, neutron: ~3.5 min each, ~5.5 min "
    "under --profile openstack).",
)
@OUT
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def l3(
    inventory: Path,
    profile: str | None,
    policies: tuple[str, ...],
    scenarios: tuple[str, ...],
    repeat: int,
    repeat_anchors: int,
    out_dir: Path,
    as_json: bool,
) -> None:
    """Kill a network node's L3 agent, cut the node, freeze it; ping a VM's floating IP every 100 ms and
    sample every router's kernel gate meanwhile. Reports the connectivity gap and dual-active time.

    Example: hastack bench l3 examples/paper.yaml --policy hastack --repeat 3
    """
    if profile == "openstack":
        # The lab runs from its own copy of the inventory (`lab up --profile openstack` wrote it).
        inventory = profile_inventory("openstack", STATE_FILE.parent)
        if "paper" in policies:
            raise CliError(
                "--profile openstack: --policy paper is not offered: the paper's 9 s agent-down time needs "
                "4 s agent reports, and the OpenStack lab runs Neutron's defaults (30 s)",
                EXIT_BAD_INPUT,
            )
        if LabState.load().inventory != str(inventory):
            raise CliError(
                "--profile openstack: no OpenStack lab is up (hastack lab up --profile openstack)",
                EXIT_BAD_INPUT,
            )
        policies = policies or ("hastack", "neutron")
    p = _lab_of(inventory)
    chosen = list(policies) or list(POLICIES)
    result = experiment.run(
        p,
        str(inventory),
        chosen,
        list(scenarios) or ["l3-kill", "node-cut", "node-freeze"],  # leader-kill on request: hastack's own
        {p: (repeat if p == "hastack" else repeat_anchors) for p in chosen},
        out_dir,
        _progress(),
    )
    report.write(out_dir)
    if as_json:
        output.print_json(result["summary"])
        return
    for row in result["summary"]:
        goal = f" (goal <= {row['goal_s']} s)" if row["goal_s"] else ""
        click.echo(
            f"{row['policy']:<8} {row['scenario']:<18} median gap {row['median_gap_s']} s, worst "
            f"{row['worst_gap_s']} s{goal}; never back {row['never_back']}; after the heal worst "
            f"{row['worst_gap_after_heal_s']} s; worst dual-active {row['worst_dual_active_s']} s; "
            f"routers moved {row['most_moved']}"
        )
    click.echo(f"wrote {out_dir / 'l3.json'}, {out_dir / 'l3.png'} and {out_dir / 'REPORT.md'}")


@bench.command(name="api")
@INVENTORY
@click.option(
    "--fault",
    "fault_names",
    multiple=True,
    type=click.Choice(sorted(api.FAULTS)),
    help="Faults to inject on the first Keystone host (repeatable; default: all three).",
)
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(1, 100), help="Trials per fault.")
@OUT
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def api_(inventory: Path, fault_names: tuple[str, ...], repeat: int, out_dir: Path, as_json: bool) -> None:
    """Keystone while a replica fails (the paper's Figure 4a): GET /v3/users through the VIP every 50 ms
    while a Keystone replica is killed, frozen, or its host cut (healed 6 s later). Reports failed
    requests, p99 before, worst latency after, and when it was steady again.

    Example: hastack bench api examples/paper.yaml --fault replica-kill --repeat 1
    """
    p = _lab_of(inventory)
    chosen = list(fault_names) or sorted(api.FAULTS)
    result = api.run(p, chosen, repeat, out_dir, _progress())
    report.write(out_dir)
    if as_json:
        output.print_json(result["summary"])
        return
    for row in result["summary"]:
        click.echo(
            f"{row['fault']:<15} failed {row['failed_total']}; p99 before {row['p99_before_ms']} ms; "
            "max after "
            f"{row['max_after_ms']} ms; steady after {row['median_steady_after_s']} s (worst "
            f"{row['worst_steady_after_s']} s)"
        )
    click.echo(f"wrote {out_dir / 'api.json'}, {out_dir / 'api.png'} and {out_dir / 'REPORT.md'}")


def _stateful(scenario: str, doc: str) -> click.Command:
    @INVENTORY
    @click.option("--repeat", default=3, show_default=True, type=click.IntRange(1, 100), help="Trials.")
    @OUT
    def command(inventory: Path, repeat: int, out_dir: Path) -> None:
        result = stateful.run(_lab_of(inventory), scenario, repeat, out_dir, _progress())
        report.write(out_dir)
        for i, trial in enumerate(result["trials"], 1):
            click.echo(f"{scenario} trial {i}: {trial['figures']}")
        click.echo(f"wrote {out_dir / (scenario + '.json')}, {out_dir / (scenario + '.png')} and REPORT.md")

    command.__doc__ = doc
    return click.command(name=scenario)(command)


for _name, _doc in (
    (
        "vip",
        "Cut the VIP holder while Keystone is used through the VIP; the gap. Example: hastack bench vip "
        "examples/paper.yaml",
    ),
    (
        "db",
        "Kill the Galera writer during INSERTs through the VIP; acknowledged commits lost (must be 0) and "
        "the error window.",
    ),
    (
        "mq",
        "Kill the node of a quorum queue's leader during confirmed publishing; confirmed messages lost "
        "(must be 0) and the publish stall.",
    ),
):
    bench.add_command(_stateful(_name, _doc))


def _sizes(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: comma-separated router counts, e.g. 54,200,1000") from None
    if not sizes or min(sizes) < 1 or max(sizes) > 4000:
        raise click.BadParameter(f"{value!r}: each count between 1 and 4000")
    return sizes


@bench.command(name="scale")
@INVENTORY
@click.option(
    "--routers",
    "sizes",
    default=",".join(map(str, scale.SIZES)),
    show_default=True,
    callback=_sizes,
    help="How many routers the failing node hosts, one trial set per count.",
)
@click.option("--scenario", default="node-cut", show_default=True, type=click.Choice(sorted(scale.SCENARIOS)))
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(1, 100), help="Trials per count.")
@OUT
def scale_(inventory: Path, sizes: tuple[int, ...], scenario: str, repeat: int, out_dir: Path) -> None:
    """A network node hosting N routers fails: the time until every router answers again from its new
    node (an echo request to each router's gateway address every 200 ms). Extra routers without VMs are
    added for the run and removed after it; needs lab.external_cidr room for them (a /21 for 1000).

    Example: hastack bench scale examples/paper.yaml --routers 54,200 --repeat 1
    """
    p = _lab_of(inventory)
    try:
        result = scale.run(p, str(inventory), sizes, scenario, repeat, out_dir, _progress())
    except ScaleError as e:
        raise CliError(f"{inventory}: {e}", EXIT_BAD_INPUT) from e
    report.write(out_dir)
    for row in result["summary"]:
        goal = f" (goal <= {row['goal_s']} s)" if row["goal_s"] else ""
        click.echo(
            f"{row['routers']:>5} routers, {row['scenario']}: every router back after "
            f"{row['median_all_back_s']} s median, {row['worst_all_back_s']} s worst{goal}; controller's "
            f"last move at {row['median_last_move_s']} s; never back {row['never_back']}"
        )
    click.echo(f"wrote {out_dir / 'scale.json'}, {out_dir / 'scale.png'} and {out_dir / 'REPORT.md'}")


@bench.command(name="all")
@INVENTORY
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(1, 100), help="Trials of each.")
@OUT
def all_(inventory: Path, repeat: int, out_dir: Path) -> None:
    """Every experiment in one run on one lab: api; l3 for hastack and the two anchor policies; controller
    (the leader killed with an L3 agent, hastack); fencing (etcd's quorum lost, a node cut off from etcd,
    etcd's leader frozen, a node agent frozen; hastack); vip; db; mq; scale (54, 200, 1000 routers); a
    fault campaign of 200 faults (seed 1); then REPORT.md. Roughly 20 + 25 x REPEAT minutes, most of it
    the anchors' slow detection and building 1000 routers twice per scale trial.

    Example: hastack bench all examples/paper.yaml --repeat 3
    """
    p = _lab_of(inventory)
    try:
        scale_routers(p.deployment, max(scale.SIZES))  # the last experiment's room, checked up front
    except ScaleError as e:
        raise CliError(f"{inventory}: {e}", EXIT_BAD_INPUT) from e
    progress = _progress()
    api.run(p, sorted(api.FAULTS), repeat, out_dir, progress)
    experiment.run(
        p,
        str(inventory),
        list(POLICIES),
        ["l3-kill", "node-cut", "node-freeze"],
        dict.fromkeys(POLICIES, repeat),
        out_dir,
        progress,
    )
    experiment.run(
        p,
        str(inventory),
        ["hastack"],
        ["leader-kill"],
        {"hastack": repeat},
        out_dir,
        progress,
        name="controller",
    )
    experiment.run(
        p,
        str(inventory),
        ["hastack"],
        ["etcd-quorum", "etcd-partition", "etcd-leader-freeze", "agent-freeze"],
        {"hastack": repeat},
        out_dir,
        progress,
        name="fencing",
    )
    for scenario in ("vip", "db", "mq"):
        stateful.run(p, scenario, repeat, out_dir, progress)
    scale.run(p, str(inventory), scale.SIZES, "node-cut", repeat, out_dir, progress)
    run_campaign(p, 200, 1, out_dir)
    click.echo(report.write(out_dir).read_text())


bench.add_command(chaos_)


@bench.command(name="report")
@OUT
def report_(out_dir: Path) -> None:
    """Write REPORT.md from the experiments' JSON in the output directory (recomputed from the trials).

    Example: hastack bench report -o results
    """
    try:
        click.echo(f"wrote {report.write(out_dir)}")
    except FileNotFoundError as e:
        raise CliError(str(e), EXIT_BAD_INPUT) from e
