"""Shared fixtures: the example inventories and a helper that writes a throwaway inventory file; and
`needs_root` for the tests that drive the kernel."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from hastack.model import Deployment, load_deployment

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def paper() -> Deployment:
    return load_deployment(EXAMPLES / "paper.yaml")


@pytest.fixture(scope="session")
def minimal() -> Deployment:
    return load_deployment(EXAMPLES / "minimal.yaml")


@pytest.fixture
def write_inventory(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "inventory.yaml"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


def needs_root(what: str) -> None:
    """Skip `what` without root, except under CI, where a skip would pass a test that never ran: fail."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail(f"{what} must run as root in CI")
        pytest.skip(f"{what} needs root (network namespaces)")
