"""`hastack`: the command line. Each verb reads the inventory, calls pure code, and presents the result.

Errors of every kind end in `errors.run_guarded`: one line per problem on stderr, exit status 2 for bad
input (inventory or arguments), 1 for a failure of the machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hastack import __version__
from hastack.analysis import analyze as run_analysis
from hastack.analysis.graph import to_dot
from hastack.catalog import CATALOG
from hastack.cli import output
from hastack.cli.bench import bench
from hastack.cli.ctl import ctl
from hastack.cli.daemons import agent, controller
from hastack.cli.errors import EXIT_BAD_INPUT, CliError, run_guarded
from hastack.cli.files import render_graph, write_tree
from hastack.cli.lab import lab
from hastack.cli.pki import pki_command
from hastack.model import load_deployment
from hastack.model.inventory import lab_default_secrets
from hastack.render import render_all

INVENTORY = click.argument("inventory", type=click.Path(dir_okay=False, path_type=Path))
JSON = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="hastack")
def cli() -> None:
    """hastack keeps the control plane of an infrastructure cloud available with no operator in the loop.

    One inventory (YAML) describes a deployment; every verb reads it. Start with
    `hastack analyze examples/paper.yaml`.
    """


@cli.group()
def inventory() -> None:
    """Work with inventory files."""


@inventory.command("check")
@INVENTORY
@JSON
def inventory_check(inventory: Path, as_json: bool) -> None:
    """Validate INVENTORY: exit 0 if it is usable, else one line per problem (FILE:LINE: FIELD: what) and 2.

    Example: hastack inventory check examples/paper.yaml
    """
    dep = load_deployment(inventory)
    summary = {
        "file": str(inventory),
        "deployment": dep.name,
        "hosts": len(dep.hosts),
        "components": len(dep.components()),
    }
    defaults = lab_default_secrets(dep.inventory.secrets)
    if as_json:
        output.print_json({"ok": True, **summary, "lab_default_secrets": defaults})
    else:
        click.echo(
            f"{inventory}: ok: deployment {dep.name!r}, {len(dep.hosts)} hosts, "
            f"{len(dep.components())} components"
        )
    if defaults:
        # A warning, not an error: the lab runs on them. `hastack agent` and `controller` refuse them.
        click.echo(
            f"{inventory}: warning: {', '.join(defaults)} still the lab's defaults: set your own "
            "before running this deployment for real",
            err=True,
        )


@cli.command()
@JSON
def catalog(as_json: bool) -> None:
    """Print the component catalog: the paper's Table 1 plus hastack's own building blocks.

    Example: hastack catalog --json | jq '.[] | select(.severity == "high")'
    """
    if as_json:
        output.print_json(
            [
                {
                    "component": c.name,
                    "table1": c.table1,
                    "severity": c.severity.value,
                    "database": c.uses_db,
                    "message_queue": c.uses_mq,
                    "stateful": c.stateful,
                    "mechanism": c.mechanism.value,
                    "roles": [r.value for r in c.roles],
                    "scope": c.scope.value,
                    "source": c.source,
                }
                for c in CATALOG
            ]
        )
    else:
        output.console().print(output.catalog_table())


@cli.command()
@INVENTORY
@JSON
@click.option(
    "--graph",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw hosts, components and their DB/MQ dependencies, coloured by severity (.png or .svg).",
)
def analyze(inventory: Path, as_json: bool, graph: Path | None) -> None:
    """Judge the failure impact of INVENTORY: every single host and service-instance failure, the single
    points of failure, and every pair of host failures in different roles.

    Example: hastack analyze examples/paper.yaml --graph paper.png
    """
    if graph is not None and graph.suffix.lower() not in (".png", ".svg"):
        raise CliError(f"--graph {graph}: the file must end in .png or .svg", EXIT_BAD_INPUT)
    dep = load_deployment(inventory)
    result = run_analysis(dep)
    if graph is not None:
        render_graph(to_dot(dep, result), graph)
    if as_json:
        output.print_json(result.to_dict())
    else:
        output.print_analysis(result)
        if graph is not None:
            click.echo(f"graph written to {graph}")


@cli.command()
@INVENTORY
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write into, one subdirectory per host: a new or empty one, or one an earlier render "
    "wrote (then replaced as a whole). A directory holding anything else is refused.",
)
@click.option("--host", "only_host", help="Render only this host.")
@JSON
def render(inventory: Path, out_dir: Path, only_host: str | None, as_json: bool) -> None:
    """Write the configuration of every real daemon (HAProxy, keepalived, Galera, RabbitMQ, etcd, and
    hastack's systemd units), one directory per host. The old directory is replaced only once every file
    is written, so a failure leaves it as it was; files holding secrets are readable by their owner only.

    Example: hastack render examples/paper.yaml -o out/
    """
    dep = load_deployment(inventory)
    if only_host is not None and only_host not in {h.name for h in dep.hosts}:
        raise CliError(f"--host {only_host}: no such host in {inventory}", EXIT_BAD_INPUT)
    files = [f for f in render_all(dep) if only_host in (None, f.host)]
    write_tree(files, out_dir)
    if as_json:
        output.print_json({"output": str(out_dir), "files": [f"{f.host}/{f.path}" for f in files]})
    else:
        click.echo(f"wrote {len(files)} files for {len({f.host for f in files})} hosts to {out_dir}")


cli.add_command(lab)
cli.add_command(agent)
cli.add_command(controller)
cli.add_command(ctl)
cli.add_command(bench)
cli.add_command(pki_command)


def main() -> None:
    sys.exit(run_guarded(cli))
