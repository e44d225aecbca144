"""The command line end to end, in process: outputs, JSON, graph, render directory, help."""

from __future__ import annotations

import http.server
import json
import os
import pwd
import shutil
import textwrap
import threading
from pathlib import Path

import pytest

from hastack.cli.errors import run_guarded
from hastack.cli.main import cli
from tests.unit.test_inventory_errors import OWN_SECRETS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(cli, argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_minimal_json_lists_the_high_spofs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["analyze", str(EXAMPLES / "minimal.yaml"), "--json"], capsys)
    assert (code, err) == (0, "")
    spofs = {s["component"]: s["severity"] for s in json.loads(out)["single_points_of_failure"]}
    assert {spofs["database"], spofs["rabbitmq"], spofs["keystone"]} == {"high"}


def test_analyze_paper_table_says_no_spof(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _run(["analyze", str(EXAMPLES / "paper.yaml")], capsys)
    assert code == 0
    assert "Verdict: no single point of failure." in out
    assert "All 37 pairs of hosts in different roles are tolerated." in out


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_analyze_draws_a_graph(suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("graphviz is missing: scripts/setup.sh must install it")
        pytest.skip("graphviz is not installed")
    target = tmp_path / f"paper{suffix}"
    code, _out, err = _run(["analyze", str(EXAMPLES / "paper.yaml"), "--graph", str(target)], capsys)
    assert (code, err) == (0, "")
    data = target.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
        assert len(data) > 20_000
    else:
        assert b"keystone x3" in data
        assert b"<svg" in data


def test_analyze_refuses_an_unknown_graph_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(["analyze", str(EXAMPLES / "paper.yaml"), "--graph", "x.gif"], capsys)
    assert code == 2
    assert err == "hastack: error: --graph x.gif: the file must end in .png or .svg\n"


def test_render_writes_every_host_and_replaces_its_own_old_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()  # empty: may be used
    paper = str(EXAMPLES / "paper.yaml")
    assert _run(["render", paper, "-o", str(out_dir), "--host", "db1"], capsys)[0] == 0
    code, out, _err = _run(["render", paper, "-o", str(out_dir)], capsys)
    assert code == 0
    assert "wrote 53 files for 10 hosts" in out
    assert (out_dir / "db1" / "haproxy.cfg").read_text().startswith("# Rendered by hastack")
    assert (out_dir / "db1" / "haproxy.cfg").stat().st_mode & 0o777 == 0o644
    assert (out_dir / "db1" / "erlang.cookie").stat().st_mode & 0o777 == 0o400
    assert (out_dir / "db1" / "rabbitmq.conf").stat().st_mode & 0o777 == 0o600
    assert (out_dir / "ctl1" / "keystone" / "keystone.conf").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging directory left behind
    # Rendered again with one host: the tree hastack wrote is replaced as a whole.
    assert _run(["render", paper, "-o", str(out_dir), "--host", "net1"], capsys)[0] == 0
    assert sorted(p.name for p in out_dir.iterdir()) == [".hastack-render", "net1"]


def test_render_hands_a_secret_to_its_daemons_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RabbitMQ's package makes its user (scripts/setup.sh installs it): its files are its own, 0600."""
    try:
        rabbitmq = pwd.getpwnam("rabbitmq")
    except KeyError:
        pytest.skip("no rabbitmq user on this machine")
    if os.geteuid() != 0:
        pytest.skip("only root may hand a file to another user")
    assert _run(["render", str(EXAMPLES / "paper.yaml"), "-o", str(tmp_path / "out")], capsys)[0] == 0
    for name in ("rabbitmq.conf", "erlang.cookie", "rabbitmq-definitions.json"):
        st = (tmp_path / "out" / "db1" / name).stat()
        assert (st.st_uid, st.st_gid) == (rabbitmq.pw_uid, rabbitmq.pw_gid), name
    assert (tmp_path / "out" / "db1" / "haproxy.cfg").stat().st_uid == 0  # no secret in it: root's


@pytest.mark.parametrize("foreign", ["notes.txt", "db1/local.cfg", "db1/extra/"])
def test_render_refuses_a_directory_holding_what_it_did_not_write(
    foreign: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    paper = str(EXAMPLES / "paper.yaml")
    assert _run(["render", paper, "-o", str(out_dir)], capsys)[0] == 0
    target = out_dir / foreign
    if foreign.endswith("/"):
        target.mkdir()
    else:
        target.write_text("the operator's own")
    before = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*"))
    code, _out, err = _run(["render", paper, "-o", str(out_dir)], capsys)
    assert code == 2
    assert err == (
        f"hastack: error: {target.as_posix().rstrip('/')} was not written by hastack: render into a new or "
        "empty directory, or one hastack rendered\n"
    )
    assert sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*")) == before
    if not foreign.endswith("/"):
        assert target.read_text() == "the operator's own"


def test_render_refuses_a_directory_it_never_rendered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine").write_text("keep me")
    code, _out, err = _run(["render", str(EXAMPLES / "paper.yaml"), "-o", str(tmp_path)], capsys)
    assert code == 2
    assert "is not empty and hastack did not render it" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    assert (tmp_path / "mine").read_text() == "keep me"


def test_render_bad_inventory_leaves_the_old_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep").write_text("x")
    bad = tmp_path / "bad.yaml"
    bad.write_text("deployment: [\n")
    code, _out, err = _run(["render", str(bad), "-o", str(out_dir)], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1
    assert (out_dir / "keep").read_text() == "x"


def test_render_one_host_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _run(
        ["render", str(EXAMPLES / "paper.yaml"), "-o", str(tmp_path / "o"), "--host", "net1", "--json"],
        capsys,
    )
    assert code == 0
    assert json.loads(out)["files"] == [
        "net1/neutron/dhcp_agent.ini",
        "net1/neutron/l3_agent.ini",
        "net1/neutron/neutron.conf",
        "net1/neutron/openvswitch_agent.ini",
        "net1/systemd/hastack-agent.service",
    ]


def test_render_unknown_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(
        ["render", str(EXAMPLES / "paper.yaml"), "-o", str(tmp_path), "--host", "nope"], capsys
    )
    assert code == 2
    assert "--host nope: no such host" in err


def test_catalog_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _run(["catalog", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    keystone = next(r for r in rows if r["component"] == "keystone")
    assert keystone == {
        "component": "keystone",
        "table1": "Keystone",
        "severity": "high",
        "database": True,
        "message_queue": False,
        "stateful": False,
        "mechanism": "active/active behind the load balancer",
        "roles": ["controller"],
        "scope": "cluster",
        "source": "paper Table 1",
    }


def test_inventory_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _run(["inventory", "check", str(EXAMPLES / "paper.yaml"), "--json"], capsys)
    assert code == 0
    assert json.loads(out)["hosts"] == 10


@pytest.mark.parametrize("verb", [[], ["analyze"], ["render"], ["catalog"], ["inventory", "check"]])
def test_every_verb_has_help_with_an_example(verb: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _run([*verb, "--help"], capsys)
    assert code == 0
    assert "Usage: hastack" in out
    if verb:
        assert "Example: hastack" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["agent", "--inventory", str(EXAMPLES / "paper.yaml"), "--host", "db1"],
            "--host db1: runs no hastack-agent",
        ),
        (
            ["controller", "--inventory", str(EXAMPLES / "paper.yaml"), "--host", "net1"],
            "runs no hastack-controller",
        ),
        (
            ["controller", "--inventory", "OWN", "--host", "ctl1", "--listen", "nope"],
            "--listen nope: expected ADDRESS:PORT",
        ),
        (
            ["controller", "--inventory", str(EXAMPLES / "paper.yaml"), "--host", "ctl1"],
            "secrets.rabbitmq_password, secrets.erlang_cookie, secrets.db_password, "
            "secrets.keystone_admin_password, secrets.neutron_password, secrets.controller_token still the "
            "lab's defaults, which anyone can read: set your own",
        ),
        (["ctl", "--inventory", str(EXAMPLES / "paper.yaml"), "policy"], "Missing argument 'NAME'"),
    ],
)
def test_daemon_and_ctl_arguments_are_checked(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [str(own_secrets(tmp_path)) if a == "OWN" else a for a in argv]
    code, _out, err = _run(argv, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_ctl_without_a_reachable_controller_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ctl", "--inventory", str(EXAMPLES / "paper.yaml"), "--endpoint", "http://127.0.0.1:9", "status"]
    code, _out, err = _run(argv, capsys)
    assert code == 1
    assert err.strip() == "hastack: error: no controller answered GET /status (tried http://127.0.0.1:9)"
    code, _out, err = _run([*argv[:-1], "pause"], capsys)
    assert code == 1
    assert "no controller leads right now" in err


def test_bench_needs_the_lab_up(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    inv = tmp_path / "other.yaml"
    inv.write_text((EXAMPLES / "minimal.yaml").read_text())
    code, _out, err = _run(["bench", "l3", str(inv), "-o", str(tmp_path)], capsys)
    assert code == 2
    assert "no lab of deployment" in err


def test_bench_openstack_refuses_the_paper_anchor(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["bench", "l3", str(EXAMPLES / "paper.yaml"), "--profile", "openstack", "--policy", "paper"]
    code, _out, err = _run([*argv, "-o", str(tmp_path)], capsys)
    assert code == 2
    assert "--policy paper is not offered" in err
    assert len(err.strip().splitlines()) == 1


def test_bench_report_without_results_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _out, err = _run(["bench", "report", "-o", str(tmp_path)], capsys)
    assert code == 2
    assert "no experiment results in" in err


def test_ctl_refuses_a_bad_endpoint_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for endpoint in ("foo", "http://127.0.0.1:99999", "ftp://127.0.0.1:7480", "http://127.0.0.1:7480/x"):
        code, _out, err = _run(["ctl", "--endpoint", endpoint, "--token", "abcdefgh", "status"], capsys)
        assert code == 2
        assert (
            err
            == f"hastack: error: --endpoint {endpoint}: must be a controller's URL, like http://10.0.0.1:7480\n"
        )


def test_ctl_help_and_explicit_endpoints_need_no_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _run(["ctl", "--inventory", "/nonexistent.yaml", "status", "--help"], capsys)
    assert code == 0
    assert "The leader's view" in out
    code, _out, err = _run(
        [
            "ctl",
            "--inventory",
            "/nonexistent.yaml",
            "--endpoint",
            "http://127.0.0.1:1",
            "--token",
            "t" * 8,
            "pause",
        ],
        capsys,
    )
    assert code == 1  # refused by the network, not for the missing inventory
    assert "no controller leads right now (asked http://127.0.0.1:1)" in err


def test_ctl_sends_an_argument_as_one_path_segment(capsys: pytest.CaptureFixture[str]) -> None:
    paths: list[str] = []

    class Controller(http.server.BaseHTTPRequestHandler):
        def _answer(self, code: int, body: dict[str, str]) -> None:
            paths.append(self.path)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer(200, {"leader": "ctl1"})

        def do_POST(self) -> None:
            self._answer(404, {"error": "no such host"})

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Controller)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code, _out, err = _run(["ctl", "--endpoint", url, "--token", "t" * 8, "drain", "a b/c"], capsys)
    finally:
        server.shutdown()
    assert (code, err) == (2, "hastack: error: no such host\n")
    assert paths[-1] == "/drain/a%20b%2Fc"


def own_secrets(tmp_path: Path) -> Path:
    """The paper's inventory with secrets of its own (the daemons refuse the lab's defaults)."""
    path = tmp_path / "own.yaml"
    path.write_text((EXAMPLES / "paper.yaml").read_text() + "secrets:\n" + textwrap.indent(OWN_SECRETS, "  "))
    return path


def test_inventory_check_warns_about_the_labs_default_secrets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _out, err = _run(["inventory", "check", str(EXAMPLES / "paper.yaml")], capsys)
    assert code == 0
    assert "warning: secrets.rabbitmq_password, " in err
    code, _out, err = _run(["inventory", "check", str(own_secrets(tmp_path))], capsys)
    assert (code, err) == (0, "")


def test_controller_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = [
        "controller",
        "--inventory",
        str(own_secrets(tmp_path)),
        "--host",
        "ctl1",
        "--listen",
        "1.2.3.4:99999",
    ]
    code, _out, err = _run(argv, capsys)
    assert code == 2
    assert err == "hastack: error: --listen 1.2.3.4:99999: expected ADDRESS:PORT, the port from 1 to 65535\n"
