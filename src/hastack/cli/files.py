"""The CLI's file output: rendered trees written whole or not at all, and graphs drawn by Graphviz."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import yaml

from hastack.cli.errors import CliError
from hastack.render import RenderedFile

SECRET_FILES = {"erlang.cookie"}


def write_tree(files: Iterable[RenderedFile], out_dir: Path) -> None:
    """Write every file under a temporary sibling of `out_dir`, then swap it in: all or nothing."""
    out_dir = out_dir.resolve()
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    except OSError as e:
        raise CliError(f"cannot write to {parent}: {e.strerror}") from e
    try:
        for f in files:
            path = staging / f.host / f.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f.text, encoding="utf-8")
            path.chmod(0o400 if path.name in SECRET_FILES else 0o644)
        staging.chmod(0o755)
        old = None
        if out_dir.exists():
            old = parent / f".{out_dir.name}.old-{os.getpid()}"
            out_dir.rename(old)
        staging.rename(out_dir)
        if old is not None:
            shutil.rmtree(old)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise CliError(f"cannot write {out_dir}: {e.strerror or e}") from e


def render_graph(dot_source: str, target: Path) -> None:
    import graphviz

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        graphviz.Source(dot_source).render(outfile=target, format=target.suffix[1:].lower(), cleanup=True)
    except graphviz.ExecutableNotFound as e:
        raise CliError("Graphviz's `dot` is not installed (scripts/setup.sh installs it)") from e
    except (graphviz.CalledProcessError, OSError) as e:
        raise CliError(f"cannot draw {target}: {e}") from e


def profile_inventory(profile: str, directory: Path) -> Path:
    """Where `with_lab_profile` writes the inventory of a lab up under `profile`."""
    return directory / f"inventory-{profile}.yaml"


def with_lab_profile(inventory: Path, profile: str, directory: Path) -> Path:
    """A copy of `inventory` whose lab.profile is `profile`, written to `directory`; its path."""
    data = yaml.safe_load(inventory.read_text(encoding="utf-8"))  # load_deployment has validated it
    lab = data.get("lab") or {}
    data["lab"] = {**lab, "profile": profile}
    target = profile_inventory(profile, directory)
    note = f"# {inventory} with lab.profile: {profile} (written by `hastack lab up --profile`)\n"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(note + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    except OSError as e:
        raise CliError(f"cannot write {target}: {e.strerror}") from e
    return target
