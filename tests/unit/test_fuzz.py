"""Generated inputs by the thousand: the inventory loader, the CLI's arguments and the controller's HTTP API
end every one in a clear error (exit status 2 or 1, HTTP 4xx, or 503 when the store is out), never a
traceback, a 5xx of our own or a hang."""

from __future__ import annotations

import contextlib
import copy
import socket
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hastack.analysis import analyze
from hastack.cli.errors import run_guarded
from hastack.cli.main import cli
from hastack.controller.api import Api, serve
from hastack.model import InventoryError
from hastack.model.checks import resolve
from hastack.model.load import parse_inventory
from hastack.render import render_all
from tests.unit.test_controller_service import TOKEN, World

PAPER = Path(__file__).parents[2] / "examples" / "paper.yaml"
BASE: dict[str, Any] = yaml.safe_load(PAPER.read_text())
SETTINGS = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "{host}", "/x/{y}", "10.240.0.300", "10.240.0.0/33", "net1", "-1", "1e999", "ü"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the document a value could be replaced."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


PLACES = _paths(BASE)


def _mutated(changes: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for path, value in changes:
        node = doc
        try:
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = value
        except (TypeError, KeyError, IndexError):
            continue  # an earlier change replaced what this one would have gone into
    return doc


@SETTINGS
@given(changes=st.lists(st.tuples(st.sampled_from(PLACES), VALUES), min_size=1, max_size=3))
def test_any_inventory_loads_or_says_what_is_wrong_and_a_loaded_one_renders(
    changes: list[tuple[tuple[Any, ...], Any]],
) -> None:
    text = yaml.safe_dump(_mutated(changes))
    try:
        inventory = parse_inventory(text, "fuzz.yaml")
    except InventoryError as e:
        said = e.lines
    else:
        said = []
    if said:
        assert all(line.startswith("fuzz.yaml:") and line.isprintable() for line in said), said
        return
    dep = resolve(inventory)
    assert all(f.text and f.host in {h.name for h in dep.hosts} for f in render_all(dep))
    assert analyze(dep) is not None


TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20)
ENDPOINTS = st.sampled_from(
    ["http://127.0.0.1:1", "https://127.0.0.1:1", "foo", "http://127.0.0.1:99999", ""]
)


def _argv(draw: st.DrawFn, tmp: Path) -> list[str]:
    """A command line of one of the verbs that touch nothing outside `tmp` and loopback."""
    inventory = draw(st.sampled_from([str(PAPER), str(tmp / "missing.yaml"), str(tmp), ""]))
    tail = draw(
        st.lists(
            st.one_of(TEXT, st.sampled_from(["--json", "--help", "-h", "--host", "net1", "-o"])), max_size=3
        )
    )
    verb = draw(st.sampled_from(["check", "analyze", "render", "catalog", "ctl", "pki", "help"]))
    if verb == "check":
        return ["inventory", "check", inventory, *tail]
    if verb == "analyze":
        return ["analyze", inventory, *[t for t in tail if t not in ("-o",)]]
    if verb == "render":
        return [
            "render",
            inventory,
            "-o",
            str(tmp / draw(st.sampled_from(["a", "b"]))),
            *[t for t in tail if t != "-o"],
        ]
    if verb == "pki":
        return ["pki", inventory, "-o", str(tmp / "pki"), *[t for t in tail if t != "-o"]]
    if verb == "ctl":
        action = draw(
            st.sampled_from(["status", "history", "pause", "drain", "move", "policy", "failsafe", ""])
        )
        return [
            "ctl",
            "--endpoint",
            draw(ENDPOINTS),
            "--token",
            draw(TEXT),
            action,
            *[t for t in tail if t != "-o"],
        ]
    return [*tail, "--help"] if verb == "help" else ["catalog", *tail]


@SETTINGS
@given(data=st.data())
def test_any_command_line_ends_in_an_exit_status_and_one_line_errors(
    data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv(data.draw, tmp_path)
    code = run_guarded(cli, argv)  # an unexpected exception would propagate: a traceback
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err
    if code:
        assert err.strip(), argv


def _leaves(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += _leaves(command, (*path, name))
        else:
            out.append(((*path, name), command))
    return out


LEAVES = _leaves(cli)


@SETTINGS
@given(data=st.data())
def test_every_verbs_arguments_parse_or_say_what_is_wrong(data: st.DataObject) -> None:
    """Every verb, the lab's, the benchmarks' and the daemons' included, parsed (not run: those act on
    the machine) from generated arguments: a usage error or a context, never another exception."""
    path, command = data.draw(st.sampled_from(LEAVES))
    options = [o for p in command.params for o in p.opts if o.startswith("-") and o != "--help"]
    tokens = st.one_of(TEXT, st.sampled_from(options or ["--json"]), st.sampled_from(["-1", "0", "1.5"]))
    args = data.draw(st.lists(tokens, max_size=6))
    with contextlib.suppress(click.exceptions.ClickException, click.exceptions.Exit):
        command.make_context(" ".join(path), list(args), resilient_parsing=False)


def test_the_parse_fuzz_reaches_every_verb() -> None:
    names = {" ".join(path) for path, _command in LEAVES}
    assert {"lab up", "lab fail", "bench chaos", "bench l3", "agent", "controller", "ctl move"} <= names


REQUEST_PATHS = st.one_of(
    st.sampled_from(
        [
            "/health",
            "/leader",
            "/status",
            "/history",
            "/metrics",
            "/pause",
            "/resume",
            "/drain/ctl1",
            "/drain/a%20b",
            "/policy/paper",
            "/policy/x",
            "/failsafe",
            "/failsafe/off",
            "/move",
            "/rebalance",
            "/",
        ]
    ),
    st.builds(
        lambda t: "/" + t, st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20)
    ),
)
HEADER_VALUES = st.one_of(
    st.sampled_from([f"Bearer {TOKEN}", "Bearer ü", "", "Bearer"]), st.text(max_size=15)
)
LENGTHS = st.one_of(
    st.none(), st.sampled_from(["0", "-1", "x", "99999999", " 5", "5"]), st.integers(0, 70000).map(str)
)


@pytest.fixture(scope="module")
def api_server() -> Any:
    w = World()
    ctl = w.controller("ctl1")
    ctl.tick()
    server = serve(Api(ctl, ctl.metrics, TOKEN, 0.1), "127.0.0.1", 0)
    yield server.server_address[1]
    server.shutdown()


@SETTINGS
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
    path=REQUEST_PATHS,
    auth=st.one_of(st.none(), HEADER_VALUES),
    length=LENGTHS,
    body=st.binary(max_size=64),
)
def test_any_request_gets_an_answer_and_never_a_5xx_of_our_own(
    api_server: int, method: str, path: str, auth: str | None, length: str | None, body: bytes
) -> None:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
    with socket.create_connection(("127.0.0.1", api_server), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)  # a body shorter than its Content-Length ends here, not in a hang
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert 200 <= status < 500 or status in (501, 503), (raw, answer[:200])
