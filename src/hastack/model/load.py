"""Reading an inventory file: YAML in, a resolved Deployment out, or every problem as one line each.

Each problem line reads `FILE:LINE: FIELD.PATH: what is wrong`. The line comes from the YAML node tree,
so a problem found by pydantic or by the semantic checks points at the key in the file that causes it (or
at its nearest parent when the key is absent, e.g. a missing field).

The secrets may live apart (`secrets_file: PATH`, relative to the inventory's directory), so that the
topology can be shared and committed: a YAML mapping with the fields of `secrets`, readable by nobody but
its owner and group.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any

import yaml
from pydantic import ValidationError

from hastack.model.checks import Path, Problem, check, resolve_unchecked
from hastack.model.deployment import Deployment
from hastack.model.inventory import Inventory, Secrets


class InventoryError(Exception):
    """The inventory cannot be used; `lines` holds one formatted problem each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_deployment(file: str | FsPath, secrets_path: FsPath | None = None) -> Deployment:
    """`secrets_path`: read the inventory's `secrets_file` from there instead (a daemon's credentials)."""
    return resolve_unchecked(load_inventory(file, secrets_path))


def dump_inventory(inventory: Inventory) -> str:
    """The inventory as YAML that `load_inventory` reads back to an equal one. Pure."""
    return yaml.safe_dump(inventory.model_dump(mode="json"), sort_keys=False)


def load_inventory(file: str | FsPath, secrets_path: FsPath | None = None) -> Inventory:
    """Parse, validate and check `file`; InventoryError listing every problem found."""
    name = str(file)
    try:
        text = FsPath(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError([f"{name}: cannot read: {getattr(e, 'strerror', None) or e}"]) from e
    return parse_inventory(text, name, FsPath(file).parent, secrets_path)


def parse_inventory(
    text: str,
    name: str = "<inventory>",
    directory: FsPath | None = None,
    secrets_path: FsPath | None = None,
) -> Inventory:
    """`directory`: where a relative `secrets_file` is looked for (None: the current directory);
    `secrets_path`: the secrets file itself, wherever `secrets_file` says it is."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        raise InventoryError([f"{name}:{line}: YAML syntax error: {e.problem or e}"]) from e
    except yaml.YAMLError as e:
        raise InventoryError([f"{name}:1: YAML error: {e}"]) from e
    if not isinstance(data, dict):
        raise InventoryError(
            [f"{name}:1: the inventory must be a YAML mapping (deployment, networks, hosts, ...)"]
        )
    lines, dup_keys = _line_map(root, name)
    if "secrets_file" in data:
        data = _with_secrets(data, name, lines, directory or FsPath("."), secrets_path)
    problems = [Problem(path, "key appears twice; the second would silently win") for path in dup_keys]
    try:
        inv = Inventory.model_validate(data)
    except ValidationError as e:
        problems += _without_consequences([_problem_of(err) for err in e.errors()])
        raise InventoryError(_format(problems, lines, name)) from e
    problems += check(inv)
    if problems:
        raise InventoryError(_format(problems, lines, name))
    return inv


def _with_secrets(
    data: dict[str, Any], name: str, lines: dict[Path, int], directory: FsPath, override: FsPath | None
) -> dict[str, Any]:
    """`data` with the mapping in its secrets file as `secrets`; InventoryError naming what is wrong."""
    line = lines.get(("secrets_file",), 1)
    given, data = data["secrets_file"], {k: v for k, v in data.items() if k != "secrets_file"}
    if "secrets" in data:
        raise InventoryError([f"{name}:{line}: secrets_file: the secrets are given here too: keep one"])
    if not isinstance(given, str) or not given:
        raise InventoryError([f"{name}:{line}: secrets_file: must be a path (got {given!r})"])
    path = override or directory / given
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError([f"{name}:{line}: secrets_file: cannot read {path}: {_reason(e)}"]) from e
    if mode & 0o007:
        raise InventoryError(
            [f"{path}:1: readable by everyone (mode {mode & 0o777:o}): chmod o-rwx it, the secrets are in it"]
        )
    try:
        secrets = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InventoryError([f"{path}:1: YAML error: {getattr(e, 'problem', None) or e}"]) from e
    if not isinstance(secrets, dict):
        raise InventoryError([f"{path}:1: must be a YAML mapping of secrets (db_password: ...)"])
    try:
        Secrets.model_validate(secrets)
    except ValidationError as e:
        own_lines, _dups = _line_map(yaml.compose(text, Loader=yaml.SafeLoader), str(path))
        problems = [_problem_of(err) for err in e.errors()]
        raise InventoryError(_format(problems, own_lines, str(path))) from e
    return {**data, "secrets": secrets, "secrets_file": given}


def _reason(e: Exception) -> str:
    return str(getattr(e, "strerror", None) or e)


def _problem_of(err: Any) -> Problem:
    loc = tuple(p for p in err["loc"] if p != "[key]")
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    if kind == "missing":
        msg = "required field is missing"
    elif kind == "extra_forbidden":
        msg = "unknown field"
    elif "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    return Problem(loc, msg)


def _without_consequences(problems: list[Problem]) -> list[Problem]:
    """Drop a problem on a field when a field inside it has one too: pydantic reports e.g. "roles must
    not be empty" after it threw out the one bad role, which only repeats the real problem."""
    paths = [p.path for p in problems]
    return [
        p for p in problems if not any(len(o) > len(p.path) and o[: len(p.path)] == p.path for o in paths)
    ]


def _format(problems: list[Problem], lines: dict[Path, int], name: str) -> list[str]:
    out = []
    for p in problems:
        where = format_path(p.path) or "(top)"
        out.append(_one_line(f"{name}:{_line_of(p.path, lines)}: {where}: {p.message}"))
    return out


def _one_line(text: str) -> str:
    """A key or value from the file may hold a newline or another control character: shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_path(path: Path) -> str:
    """`('hosts', 2, 'address')` -> `hosts[2].address`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_of(path: Path, lines: dict[Path, int]) -> int:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return 1


MAX_NODES = 100_000  # far above any real deployment; aliases could expand a small file exponentially


def _line_map(root: yaml.Node | None, name: str = "<inventory>") -> tuple[dict[Path, int], list[Path]]:
    """The 1-based line of every key and item in the document, and the paths of duplicated keys.
    InventoryError for an alias that contains itself or a document that expands past MAX_NODES."""
    lines: dict[Path, int] = {}
    dups: list[Path] = []
    open_nodes: set[int] = set()  # the nodes being walked: meeting one again is a cycle

    def walk(node: yaml.Node, path: Path) -> None:
        if id(node) in open_nodes:
            line = node.start_mark.line + 1
            raise InventoryError([f"{name}:{line}: {format_path(path)}: a YAML alias refers to itself"])
        if len(lines) > MAX_NODES:
            raise InventoryError([f"{name}:1: the inventory expands to over {MAX_NODES} values (aliases?)"])
        open_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                if child in lines:
                    dups.append(child)
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))
        open_nodes.discard(id(node))

    if root is not None:
        lines[()] = root.start_mark.line + 1
        walk(root, ())
    return lines, dups
