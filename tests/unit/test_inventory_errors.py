"""Malformed inventories: each gives one line `FILE:LINE: FIELD: what is wrong` and exit status 2."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from hastack.cli.errors import run_guarded
from hastack.cli.main import cli

BASE = """
deployment: test
networks:
  management: 10.240.0.0/24
vips:
  api: {address: 10.240.0.100}
hosts:
  - {name: db1, address: 10.240.0.11, roles: [persistence, loadbalancer]}
  - {name: db2, address: 10.240.0.12, roles: [persistence, loadbalancer]}
  - {name: db3, address: 10.240.0.13, roles: [persistence, loadbalancer]}
  - {name: ctl1, address: 10.240.0.21, roles: [controller]}
  - {name: ctl2, address: 10.240.0.22, roles: [controller]}
  - {name: net1, address: 10.240.0.31, roles: [network]}
components:
  database:
  rabbitmq:
  haproxy:
  keepalived:
  keystone:
  l3-agent:
timing:
  lease_ttl_s: 1
  heartbeat_interval_ms: 200
"""

# (name, edit of BASE as (old, new), expected line, expected field path, words the message must contain)
CASES = [
    (
        "yaml syntax",
        ("  management: 10.240.0.0/24", "  management: [10.240.0.0/24"),
        4,
        None,
        "YAML syntax error",
    ),
    (
        "unknown role",
        ("roles: [controller]}\n  - {name: ctl2", "roles: [controler]}\n  - {name: ctl2"),
        10,
        "hosts[3].roles[0]",
        "controler",
    ),
    (
        "unknown component",
        ("  keystone:\n", "  keystone:\n  nova-apii:\n"),
        19,
        "components.nova-apii",
        "unknown component",
    ),
    ("duplicate host name", ("{name: ctl2,", "{name: ctl1,"), 11, "hosts[4].name", "duplicate host name"),
    (
        "duplicate host address",
        ("address: 10.240.0.22", "address: 10.240.0.21"),
        11,
        "hosts[4].address",
        "duplicate host address",
    ),
    (
        "vip outside its network",
        ("{address: 10.240.0.100}", "{address: 10.241.0.100}"),
        5,
        "vips.api.address",
        "outside its network",
    ),
    (
        "replicas above eligible hosts",
        ("  keystone:\n", "  keystone: {replicas: 3}\n"),
        18,
        "components.keystone.replicas",
        "only 2 host(s)",
    ),
    (
        "port clash on one host",
        ("  keystone:\n", "  keystone:\n  etcd: {hosts: [db1], port: 3306}\n"),
        19,
        "components.etcd",
        "port 3306 on db1",
    ),
    (
        "timing rule",
        ("heartbeat_interval_ms: 200", "heartbeat_interval_ms: 400"),
        22,
        "timing.heartbeat_interval_ms",
        "exceeds lease_ttl_s",
    ),
    (
        "etcd election timeout",
        ("  lease_ttl_s: 1\n", "  lease_ttl_s: 1\n  etcd_election_timeout_ms: 100\n"),
        22,
        "timing.etcd_election_timeout_ms",
        "5 x etcd_heartbeat_ms",
    ),
    (
        "api response timeout below the health check's",
        ("  lease_ttl_s: 1\n", "  lease_ttl_s: 1\n  api_response_timeout_ms: 200\n"),
        22,
        "timing.api_response_timeout_ms",
        "must exceed health_check_timeout_ms",
    ),
    (
        "token timeout below the API's",
        ("  lease_ttl_s: 1\n", "  lease_ttl_s: 1\n  token_issue_timeout_ms: 1000\n"),
        22,
        "timing.token_issue_timeout_ms",
        "at least api_response_timeout_ms",
    ),
    (
        "grants that a lost round or two would let run out",
        ("  lease_ttl_s: 1\n", "  lease_ttl_s: 1\n  grant_ms: 150\n"),
        22,
        "timing.grant_ms",
        "must outlive two lost rounds",
    ),
    (
        "grants no shorter than the lease",
        ("  lease_ttl_s: 1\n", "  lease_ttl_s: 1\n  grant_ms: 960\n"),
        22,
        "timing.grant_ms",
        "or grants gain nothing",
    ),
    (
        "path with a placeholder other than {host}",
        ("deployment: test\n", 'deployment: test\npaths: {state_dir: "/x/{y}"}\n'),
        2,
        "paths.state_dir",
        "{host} is the only placeholder",
    ),
    (
        "recursive alias",
        ("deployment: test\n", "deployment: test\nlab: &n {a: *n}\n"),
        2,
        "lab.a",
        "a YAML alias refers to itself",
    ),
    ("missing field", ("deployment: test\n", ""), 1, "deployment", "required field is missing"),
    ("unknown field", ("timing:\n", "timming:\n"), 20, "timming", "unknown field"),
    (
        "bad address",
        ("address: 10.240.0.31", "address: 10.240.0.310"),
        12,
        "hosts[5].address",
        "IPv4 address",
    ),
    (
        "duplicate yaml key",
        ("  haproxy:\n", "  haproxy:\n  rabbitmq:\n"),
        17,
        "components.rabbitmq",
        "appears twice",
    ),
    (
        "host without the role",
        ("  l3-agent:\n", "  l3-agent: {hosts: [ctl1]}\n"),
        19,
        "components.l3-agent.hosts[0]",
        "no network role",
    ),
    (
        "keepalived away from haproxy",
        ("  keepalived:\n", "  keepalived: {hosts: [db1]}\n"),
        17,
        "components.keepalived",
        "exactly the haproxy hosts",
    ),
    (
        "lab range overlaps",
        ("timing:\n", "lab: {external_cidr: 10.240.0.0/25}\ntiming:\n"),
        20,
        "lab.external_cidr",
        "overlaps network management",
    ),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(cli, argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_base_inventory_is_valid(
    write_inventory: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["inventory", "check", str(write_inventory(BASE))], capsys)
    assert code == 0
    assert err.endswith("still the lab's defaults: set your own before running this deployment for real\n")
    assert "ok: deployment 'test', 6 hosts, 6 components" in out


@pytest.mark.parametrize(
    ("old_new", "line", "field", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_inventory_gives_one_line(
    old_new: tuple[str, str],
    line: int,
    field: str | None,
    words: str,
    write_inventory: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, new = old_new
    assert old in BASE, "the case must change the base inventory"
    path = write_inventory(BASE.replace(old, new, 1))
    code, out, err = _run(["inventory", "check", str(path)], capsys)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    prefix = f"{path}:{line}: "
    assert lines[0].startswith(prefix), lines[0]
    if field is not None:
        assert lines[0].startswith(f"{prefix}{field}: "), lines[0]
    assert words in lines[0]


def test_several_problems_are_all_reported(
    write_inventory: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = BASE.replace("{name: ctl2,", "{name: ctl1,").replace(
        "{address: 10.240.0.100}", "{address: 10.9.0.1}"
    )
    code, _out, err = _run(["inventory", "check", str(write_inventory(text))], capsys)
    assert code == 2
    assert len(err.splitlines()) == 2
    assert all(re.match(r".+:\d+: \S+: ", line) for line in err.splitlines())


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(["analyze", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2
    assert err == f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory\n"


def test_bad_cli_argument_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(["analyze", "--frobnicate", "x.yaml"], capsys)
    assert code == 2
    assert err.splitlines() == [
        "hastack analyze: error: No such option '--frobnicate' (see `hastack analyze --help`)"
    ]


def test_aliases_that_expand_exponentially_are_refused(
    write_inventory: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    laughs = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = write_inventory(BASE + "\n".join(laughs) + "\n")
    code, _out, err = _run(["inventory", "check", str(path)], capsys)
    assert code == 2
    assert err == f"{path}:1: the inventory expands to over 100000 values (aliases?)\n"


def test_inventory_that_is_not_a_mapping(
    write_inventory: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory("- just\n- a list\n")
    code, _out, err = _run(["inventory", "check", str(path)], capsys)
    assert code == 2
    assert err == f"{path}:1: the inventory must be a YAML mapping (deployment, networks, hosts, ...)\n"


OWN_SECRETS = (
    "rabbitmq_password: r-own\nerlang_cookie: OWNCOOKIE123\ndb_password: d-own\n"
    "keystone_admin_password: k-own\nneutron_password: n-own\ncontroller_token: token-of-our-own\n"
)


def _with_secrets_file(tmp_path: Path, secrets: str, mode: int = 0o600, extra: str = "") -> Path:
    (tmp_path / "secrets.yaml").write_text(secrets)
    (tmp_path / "secrets.yaml").chmod(mode)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(BASE + extra + "secrets_file: secrets.yaml\n")
    return inventory


def test_the_secrets_can_live_in_a_file_of_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hastack.model import load_deployment

    inventory = _with_secrets_file(tmp_path, OWN_SECRETS)
    code, _out, err = _run(["inventory", "check", str(inventory)], capsys)
    assert (code, err) == (0, "")  # none of the lab's defaults left
    assert load_deployment(inventory).inventory.secrets.db_password == "d-own"


@pytest.mark.parametrize(
    ("secrets", "mode", "extra", "said"),
    [
        (OWN_SECRETS, 0o644, "", "secrets.yaml:1: readable by everyone (mode 644): chmod o-rwx it"),
        (OWN_SECRETS, 0o600, "secrets: {db_password: x}\n", "secrets_file: the secrets are given here too"),
        ("db_password: x\nerlang_cookie: short\n", 0o600, "", "secrets.yaml:2: erlang_cookie: String should"),
        ("- a list\n", 0o600, "", "secrets.yaml:1: must be a YAML mapping of secrets"),
    ],
)
def test_a_secrets_file_that_cannot_be_used_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secrets: str, mode: int, extra: str, said: str
) -> None:
    inventory = _with_secrets_file(tmp_path, secrets, mode, extra)
    code, _out, err = _run(["inventory", "check", str(inventory)], capsys)
    assert code == 2
    assert said in err
    assert len(err.strip().splitlines()) == 1


def test_a_profile_copy_of_the_inventory_finds_its_secrets_file_and_is_private(tmp_path: Path) -> None:
    from hastack.cli.files import with_lab_profile
    from hastack.model import load_deployment

    inventory = _with_secrets_file(tmp_path, OWN_SECRETS)
    copy = with_lab_profile(inventory, "openstack", tmp_path / "run")
    assert copy.stat().st_mode & 0o777 == 0o600
    dep = load_deployment(copy)
    assert (dep.inventory.lab.profile, dep.inventory.secrets.db_password) == ("openstack", "d-own")
