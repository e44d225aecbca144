"""Every rendered file goes through the real daemon's own checker (installed by scripts/setup.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hastack import pki
from hastack.model import Deployment, Inventory
from hastack.model.checks import resolve
from hastack.pki import Layout
from hastack.render import RenderedFile, render_all

EXAMPLES = ("paper", "minimal")


def _tool(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    if os.environ.get("CI"):
        pytest.fail(f"{name} is missing: scripts/setup.sh must install it")
    pytest.skip(f"{name} is not installed (run scripts/setup.sh)")


def _rendered(dep: Deployment, path: str, tmp_path: Path) -> list[Path]:
    """Write the files called `path` of every host (all files, so that references between them resolve)."""
    written = []
    for f in render_all(dep):
        target = tmp_path / f.host / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.text)
        if f.path == path:
            written.append(target)
    assert written, f"nothing rendered as {path}"
    return written


def _with_real_binary(dep: Deployment) -> Deployment:
    """systemd-analyze checks that ExecStart exists: point it at this environment's `hastack`."""
    hastack = Path(sys.executable).parent / "hastack"
    inv: Inventory = dep.inventory.model_copy(
        update={"paths": dep.inventory.paths.model_copy(update={"hastack_bin": str(hastack)})}
    )
    return resolve(inv)


def _check(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize(
    ("path", "tool", "flag"), [("haproxy.cfg", "haproxy", "-c"), ("keepalived.conf", "keepalived", "-t")]
)
def test_daemon_accepts_every_rendered_config(
    example: str, path: str, tool: str, flag: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    dep = _with_certificates(request.getfixturevalue(example), tmp_path / "pki")
    for cfg in _rendered(dep, path, tmp_path):
        _check([_tool(tool), flag, "-f", str(cfg)])


def _with_certificates(dep: Deployment, pki_dir: Path) -> Deployment:
    """HAProxy's check loads the certificates a config names: make them, as `hastack pki` would."""
    inv = dep.inventory.model_copy(
        update={"paths": dep.inventory.paths.model_copy(update={"pki_dir": str(pki_dir)})}
    )
    pki.ensure(dep.name, [(h.name, str(h.address)) for h in dep.hosts], Layout(pki_dir))
    return resolve(inv)


@pytest.mark.parametrize("example", EXAMPLES)
def test_systemd_accepts_every_rendered_unit(
    example: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    dep = _with_real_binary(request.getfixturevalue(example))
    units = [f for f in render_all(dep) if f.path.startswith("systemd/") and f.path.endswith(".service")]
    assert units
    for unit in units:
        # systemd-analyze wants the unit's own file name; one directory per host keeps them apart.
        target = tmp_path / unit.host / Path(unit.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(unit.text)
        _check([_tool("systemd-analyze"), "verify", str(target)])


@pytest.mark.parametrize(
    ("host", "unit", "worst"),
    [("net1", "hastack-agent.service", 4.8), ("ctl1", "hastack-controller.service", 3.0)],
)
def test_systemd_scores_hastacks_units_as_hardened(
    paper: Deployment, tmp_path: Path, host: str, unit: str, worst: float
) -> None:
    """`systemd-analyze security` (0 best, 10 worst): without hardening both units scored 9.6."""
    text = next(f.text for f in render_all(paper) if f.host == host and f.path == f"systemd/{unit}")
    assert "RestartPreventExitStatus=2" in text  # bad input is not restarted at 10 Hz for ever
    (tmp_path / unit).write_text(text)
    argv = [_tool("systemd-analyze"), "security", "--offline=yes", str(tmp_path / unit)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False).stdout
    score = float(out.rsplit("Overall exposure level for", 1)[1].split(":")[1].split()[0])
    assert score <= worst, out


def test_mariadb_knows_every_rendered_option(paper: Deployment, tmp_path: Path) -> None:
    for cnf in _rendered(paper, "mariadb.cnf", tmp_path):
        _check([_tool("mariadbd"), f"--defaults-file={cnf}", "--user=root", "--help", "--verbose"])


def test_mariadb_check_catches_a_bad_option(tmp_path: Path) -> None:
    """The check above can fail: an unknown option makes mariadbd exit non-zero."""
    bad = tmp_path / "bad.cnf"
    bad.write_text("[mysqld]\nno_such_option = 1\n")
    result = subprocess.run(
        [_tool("mariadbd"), f"--defaults-file={bad}", "--user=root", "--help", "--verbose"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "unknown variable" in result.stderr


def test_haproxy_check_catches_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "haproxy.cfg"
    bad.write_text("frontend x\n    bind 127.0.0.1:1 no-such-keyword\n")
    result = subprocess.run(
        [_tool("haproxy"), "-c", "-f", str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0


def test_rendered_file_type(paper: Deployment) -> None:
    assert all(isinstance(f, RenderedFile) for f in render_all(paper))
