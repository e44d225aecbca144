"""`hastack ctl`: the operator's client of the controllers' HTTP API.

Reads go to the leader (found by asking each controller's GET /leader), or to any controller that answers
when no leader does; changes go to the leader only, with the inventory's controller token.
"""

from __future__ import annotations

import functools
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hastack.cli import output
from hastack.cli.errors import EXIT_BAD_INPUT, CliError
from hastack.controller.endpoints import controller_urls
from hastack.model import load_deployment
from hastack.pki.contexts import client_context
from hastack.pki.layout import Layout

JSON = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")


class Client:
    def __init__(
        self, endpoints: list[str], token: str, timeout_s: float = 5.0, tls: ssl.SSLContext | None = None
    ) -> None:
        """`tls`: how https:// endpoints are trusted (default: the system's CAs)."""
        self.endpoints, self.token, self.timeout_s, self.tls = endpoints, token, timeout_s, tls

    def call(self, base: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        req = urllib.request.Request(base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")  # reads of the state need it too
        if method == "POST":
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=self.tls) as resp:
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, _decode(e.read())
        except (urllib.error.URLError, OSError) as e:
            raise CliError(f"controller {base}: {getattr(e, 'reason', e)}") from e

    def leader(self) -> str | None:
        for base in self.endpoints:
            try:
                if self.call(base, "GET", "/leader")[0] == 200:
                    return base
            except CliError:
                continue
        return None

    def read(self, path: str) -> Any:
        for base in [b for b in [self.leader()] if b] + self.endpoints:
            try:
                code, body = self.call(base, "GET", path)
            except CliError:
                continue
            if code == 200:
                return body
        raise CliError(f"no controller answered GET {path} (tried {', '.join(self.endpoints)})")

    def change(self, path: str, body: dict[str, Any] | None = None) -> Any:
        base = self.leader()
        if base is None:
            raise CliError(
                f"no controller leads right now (asked {', '.join(self.endpoints)}); retry shortly"
            )
        code, answer = self.call(base, "POST", path, body)
        if code != 200:
            raise CliError(
                answer.get("error", answer) if isinstance(answer, dict) else str(answer),
                EXIT_BAD_INPUT if code in (400, 401, 404) else 1,
            )
        return answer


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def endpoint_url(value: str) -> str:
    """`value` if it is a controller URL (http or https, a host, a port in range), else CliError."""
    try:
        parts = urllib.parse.urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.path in ("", "/")
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        ok = False
    if not ok:
        raise CliError(
            f"--endpoint {value}: must be a controller's URL, like http://10.0.0.1:7480", EXIT_BAD_INPUT
        )
    return value.rstrip("/")


def _connect(inventory: Path, endpoints: tuple[str, ...], token: str | None, ca: Path | None) -> Client:
    """The client the options describe; the inventory is read only for what the options leave out."""
    urls = [endpoint_url(e) for e in endpoints]
    if token is not None and not (token.isascii() and token.isprintable() and " " not in token):
        raise CliError(
            "--token: must be printable ASCII without spaces (it goes in an HTTP header)", EXIT_BAD_INPUT
        )
    if urls and token:
        return Client(urls, token, tls=_trust(ca, urls))
    dep = load_deployment(inventory)
    urls = urls or controller_urls(dep)
    if not urls:
        raise CliError(f"{inventory}: no host runs hastack-controller", EXIT_BAD_INPUT)
    return Client(
        urls, token or dep.inventory.secrets.controller_token, tls=_trust(ca or Layout.of(dep).ca, urls)
    )


def _trust(ca: Path | None, urls: list[str]) -> ssl.SSLContext | None:
    """How the https:// endpoints among `urls` are trusted: `ca`, else the system's CAs."""
    if ca is None or not any(u.startswith("https:") for u in urls):
        return None
    try:
        return client_context(ca)
    except (OSError, ssl.SSLError) as e:
        raise CliError(
            f"the controllers' CA {ca}: cannot use it ({getattr(e, 'strerror', None) or e}); "
            "give --ca, or make the certificates with `hastack pki`",
            EXIT_BAD_INPUT,
        ) from e


@click.group()
@click.option(
    "--inventory",
    type=click.Path(dir_okay=False, path_type=Path),
    default="/etc/hastack/inventory.yaml",
    show_default=True,
    help="Where the controllers are and the token for changes (unread given --endpoint and --token).",
)
@click.option("--endpoint", "endpoints", multiple=True, help="A controller's URL (repeatable; default: all).")
@click.option("--token", envvar="HASTACK_TOKEN", help="The controllers' token (default: the inventory's).")
@click.option(
    "--ca",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="HASTACK_CA",
    help="The CA that issued the controllers' certificates (default: ca.pem in the inventory's pki_dir; "
    "with --endpoint and --token: the system's CAs).",
)
@click.pass_context
def ctl(
    ctx: click.Context, inventory: Path, endpoints: tuple[str, ...], token: str | None, ca: Path | None
) -> None:
    """Ask the HA controllers what they see, and tell them what to do.

    Example: hastack ctl --inventory examples/paper.yaml status
    """
    # Connected when a command runs, not here: `hastack ctl status --help` needs no inventory.
    ctx.obj = functools.cache(functools.partial(_connect, inventory, endpoints, token, ca))


def pass_client(f: Callable[..., None]) -> Callable[..., None]:
    """Like click.pass_obj, with the client the group's options describe."""

    @click.pass_context
    @functools.wraps(f)
    def with_client(ctx: click.Context, /, *args: Any, **kwargs: Any) -> None:
        f(ctx.obj(), *args, **kwargs)

    return with_client


def _show(answer: Any, as_json: bool) -> None:
    if as_json:
        output.print_json(answer)
    else:
        click.echo(answer.get("done", answer) if isinstance(answer, dict) else answer)


@ctl.command()
@JSON
@pass_client
def status(client: Client, as_json: bool) -> None:
    """The leader's view: policy, pause, drained hosts, each network node's lease and routers."""
    s = client.read("/status")
    if as_json:
        output.print_json(s)
        return
    click.echo(
        f"{s['host']} {'leads' if s['leader'] else 'is standby'}; policy {s.get('policy')}; "
        f"{'PAUSED; ' if s.get('paused') else ''}drained: {', '.join(s.get('drained', [])) or 'none'}"
    )
    click.echo(f"last tick: {s['last_tick']}")
    for n in s.get("nodes", []):
        state = n["failed"] or "healthy"
        click.echo(
            f"  {n['host']:<10} {state:<22} lease={'yes' if n['lease'] else 'no':<3} "
            f"heartbeat {n['heartbeat_age_s']} s ago  routers: {' '.join(n['routers']) or '-'}"
        )


@ctl.command()
@JSON
@click.option(
    "--since",
    type=float,
    default=0.0,
    metavar="UNIX_TIME",
    help="Only what it did from then on (seconds since the epoch, as `date +%s` prints).",
)
@pass_client
def history(client: Client, as_json: bool, since: float) -> None:
    """What the leader did, newest last."""
    entries = client.read(f"/history?since={since!r}")
    if as_json:
        output.print_json(entries)
        return
    for e in entries:
        click.echo(f"{time.strftime('%H:%M:%S', time.localtime(e['time']))} {e['sentence']}")


def _change(name: str, path: str, doc: str, argument: str | None = None) -> click.Command:
    @pass_client
    def command(client: Client, /, as_json: bool, **args: str) -> None:
        # A value is one path segment, whatever it holds: "a b" or "x/y" is an unknown name, not a URL error.
        _show(
            client.change(path.format(**{k: urllib.parse.quote(v, safe="") for k, v in args.items()})),
            as_json,
        )

    command.__doc__ = doc
    cmd = click.command(name=name)(JSON(command))
    if argument:
        cmd = click.argument(argument)(cmd)
    return cmd


for _name, _path, _doc, _arg in (
    ("pause", "/pause", "Stop moving routers (failures are still watched and reported).", None),
    ("resume", "/resume", "Move routers again.", None),
    (
        "drain",
        "/drain/{host}",
        "Take HOST's API replicas out of HAProxy rotation, with no failed request.",
        "host",
    ),
    ("enable", "/enable/{host}", "Put HOST's API replicas back into rotation.", "host"),
    ("policy", "/policy/{name}", "Switch the failover policy: hastack, paper or neutron.", "name"),
    (
        "failsafe",
        "/failsafe/{state}",
        "Switch failsafe on or off: whether network nodes keep forwarding while etcd is lost, if every "
        "controller confirms (on by default). STATE is on or off.",
        "state",
    ),
    (
        "rebalance",
        "/rebalance",
        "Even out routers over the healthy network nodes (each moved router pauses about a lease TTL).",
        None,
    ),
):
    ctl.add_command(_change(_name, _path, _doc, _arg))


@ctl.command()
@click.argument("router")
@click.argument("node")
@JSON
@pass_client
def move(client: Client, router: str, node: str, as_json: bool) -> None:
    """Move ROUTER to network node NODE (fenced: it stops on its old node before it starts on NODE)."""
    _show(client.change("/move", {"router": router, "node": node}), as_json)
