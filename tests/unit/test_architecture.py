"""Each fact has one home: addresses, URLs and per-host paths in model/endpoints.py, store keys in
store/keys.py. Checked on the source, so that a new module cannot quietly grow a second home."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "hastack"

# What modules outside render/ may take from it: configuration and how a daemon is started on it.
RENDERING = {
    "render_all",
    "RenderedFile",
    "haproxy_command",
    "render_neutron_conf",
    "bridge_mappings",
    "EXTERNAL_NET",  # the name of Neutron's provider network of floating IPs, set in neutron.conf
    "watchdog_ms",
}
# Path segments of the store's keys (store/keys.py): one of them in a string elsewhere is a second home.
KEY_SEGMENTS = ("/hastack/", "nodes/", "bindings/", "agents/", "controller/leader", "control/", "net/")
# Strings that hold such a segment and are no key: files, and Neutron's API (`/agents/ID/l3-routers`).
NOT_KEYS = ("http", "/etc", "/var", "/run", "/usr", "/proc", "/agents/")


def _modules() -> list[tuple[str, ast.Module]]:
    return [(str(f.relative_to(SRC)), ast.parse(f.read_text(encoding="utf-8"))) for f in SRC.rglob("*.py")]


def test_only_render_takes_configuration_from_render() -> None:
    taken = {
        (name, alias.name)
        for name, tree in _modules()
        if not name.startswith("render/")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hastack.render")
        for alias in node.names
    }
    assert taken  # the check reads imports at all
    assert {(m, n) for m, n in taken if n not in RENDERING} == set()


def _strings(tree: ast.Module) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
    docs = {
        ast.get_docstring(n, clean=False)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
    }
    return [s for s in out if s not in docs]


def test_store_keys_are_spelled_only_in_store_keys() -> None:
    found = {
        (name, s)
        for name, tree in _modules()
        for s in _strings(tree)
        if any(seg in s for seg in KEY_SEGMENTS) and not s.startswith(NOT_KEYS)
    }
    assert {s for name, s in found if name == "store/keys.py"}  # the check sees keys.py's own spellings
    assert {(n, s) for n, s in found if n != "store/keys.py"} == set()


def test_operators_read_no_tracker_numbers_or_project_history() -> None:
    """Help, docstrings and docs speak to an operator: no issue numbers, no "the seed" (the first version of
    this project); the paper is cited by its title."""
    root = SRC.parents[1]
    texts = [*SRC.rglob("*.py"), *(root / "docs").glob("*.md"), root / "README.md"]
    pattern = re.compile(r"\bissue \d+|\bthe seed's\b|\bthe seed \(", re.IGNORECASE)
    found = [f"{p.name}: {m.group(0)}" for p in texts for m in pattern.finditer(p.read_text("utf-8"))]
    assert len(texts) > 100  # the check reads the sources and the docs
    assert found == []
