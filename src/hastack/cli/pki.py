"""`hastack pki`: the deployment's own CA and certificates, for TLS on etcd and hastack's other channels."""

from __future__ import annotations

from pathlib import Path

import click

from hastack import pki
from hastack.cli import output
from hastack.cli.errors import EXIT_BAD_INPUT, CliError
from hastack.model import load_deployment


@click.command("pki")
@click.argument("inventory", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the files go [default: the inventory's paths.pki_dir].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the files made as JSON.")
def pki_command(inventory: Path, out_dir: Path | None, as_json: bool) -> None:
    """Make the deployment's CA (ca.pem, ca-key.pem), a certificate and key for every host of INVENTORY
    (HOST.pem, HOST-key.pem, and HOST-bundle.pem for HAProxy) and hastack's client certificate
    (client.pem, client-key.pem): ECDSA P-256, the CA valid ten years, the rest 825 days.

    Only what is missing is made; no file is ever replaced. An existing certificate is checked: issued by
    the CA there and naming its host's address. To use a CA of your own, put its ca.pem and ca-key.pem in
    the directory first. Keys are written 0600; copy each host only its own key, the CA's key to none.

    Example: hastack pki examples/paper.yaml -o pki/
    """
    dep = load_deployment(inventory)
    layout = pki.Layout(out_dir or Path(dep.inventory.paths.pki_dir))
    try:
        made = pki.ensure(dep.name, [(h.name, str(h.address)) for h in dep.hosts], layout)
    except pki.PkiError as e:
        raise CliError(str(e), EXIT_BAD_INPUT) from e
    except OSError as e:
        raise CliError(f"cannot write to {layout.dir}: {e.strerror or e}") from e
    if as_json:
        output.print_json({"directory": str(layout.dir), "made": [str(p) for p in made]})
    elif made:
        click.echo(f"made {len(made)} files in {layout.dir}: {', '.join(p.name for p in made)}")
    else:
        click.echo(f"{layout.dir}: every certificate is in place, nothing made")
