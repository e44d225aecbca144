"""The CLI's file output: rendered trees written whole or not at all, and graphs drawn by Graphviz."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import yaml

from hastack.cli.errors import EXIT_BAD_INPUT, CliError
from hastack.render import RenderedFile

MANIFEST = ".hastack-render"  # in a rendered directory: every file hastack wrote there, one per line


def foreign_entry(out_dir: Path) -> str | None:
    """Why `out_dir` may not be replaced, or None: it must be missing, empty, or hold only what an earlier
    render wrote (its manifest lists every file; the directories are those files' parents)."""
    if not out_dir.exists():
        return None
    if not out_dir.is_dir():
        return f"{out_dir} exists and is not a directory"
    entries = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*"))
    if not entries:
        return None
    try:
        listed = set((out_dir / MANIFEST).read_text(encoding="utf-8").split("\n")[1:]) - {""}
    except (OSError, UnicodeDecodeError):
        return f"{out_dir} is not empty and hastack did not render it (no readable {MANIFEST})"
    parents = {parent.as_posix() for entry in listed for parent in Path(entry).parents} - {"."}
    for entry in entries:
        is_dir = (out_dir / entry).is_dir() and not (out_dir / entry).is_symlink()
        if entry != MANIFEST and entry not in (parents if is_dir else listed):
            return f"{out_dir / entry} was not written by hastack"
    return None


def write_tree(files: Iterable[RenderedFile], out_dir: Path) -> None:
    """Write every file under a temporary sibling of `out_dir`, then swap it in: all or nothing. The old
    directory is replaced only if hastack rendered all of it (or it is empty): nothing else is removed."""
    out_dir = out_dir.resolve()
    parent = out_dir.parent
    refused = foreign_entry(out_dir)
    if refused is not None:
        raise CliError(
            f"{refused}: render into a new or empty directory, or one hastack rendered", EXIT_BAD_INPUT
        )
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    except OSError as e:
        raise CliError(f"cannot write to {parent}: {e.strerror}") from e
    try:
        _write_files(files, staging)
        old = None
        if out_dir.exists():
            old = parent / f".{out_dir.name}.old-{os.getpid()}"
            out_dir.rename(old)
        staging.rename(out_dir)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise CliError(f"cannot write {out_dir}: {e.strerror or e}") from e
    if old is not None:
        # Checked again once moved aside: something written into it meanwhile is kept, and said.
        if foreign_entry(old) is not None:
            raise CliError(f"{out_dir} was rendered, but its old copy {old} gained files meanwhile: kept")
        shutil.rmtree(old)


def _write_files(files: Iterable[RenderedFile], staging: Path) -> None:
    """The files with their modes, and the manifest that lets a later render replace them. The staging
    directory is 0700 until every file has its mode: a secret is never readable by others on the way."""
    written = []
    for f in files:
        path = staging / f.host / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.text, encoding="utf-8")
        path.chmod(f.mode)
        _give(path, f.owner)
        written.append(f"{f.host}/{f.path}")
    header = "# Written by `hastack render`: a later render may replace exactly these files."
    (staging / MANIFEST).write_text("\n".join([header, *sorted(written)]) + "\n", encoding="utf-8")
    staging.chmod(0o755)


def _give(path: Path, owner: str | None) -> None:
    """Hand a file holding a daemon's secret to that daemon's user, when this machine has it and we may:
    rendered on the host that runs the daemon, it is ready to use. Elsewhere it stays root's (the operator's
    guide lists the owners for the installing step)."""
    if owner is None or os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(owner)
    except KeyError:
        return
    os.chown(path, user.pw_uid, user.pw_gid)


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
    if isinstance(data.get("secrets_file"), str):  # relative to the original, not to the copy
        data["secrets_file"] = str((inventory.parent / data["secrets_file"]).resolve())
    target = profile_inventory(profile, directory)
    note = f"# {inventory} with lab.profile: {profile} (written by `hastack lab up --profile`)\n"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # It may hold the secrets: readable by its owner only, from the first byte.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an earlier copy may have had another mode
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(note + yaml.safe_dump(data, sort_keys=False))
    except OSError as e:
        raise CliError(f"cannot write {target}: {e.strerror}") from e
    return target
