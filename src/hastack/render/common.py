"""Shared pieces of the renderers: the rendered file, its header, and how durations are written. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from hastack.model import Deployment


@dataclass(frozen=True)
class RenderedFile:
    """One configuration file for one host; `path` is relative to that host's output directory."""

    host: str
    path: str
    text: str
    mode: int = 0o644  # 0o600 for a file holding a secret; erlang.cookie 0o400, as RabbitMQ demands
    owner: str | None = None  # the daemon's user a file holding its secret belongs to (None: root)


def header(dep: Deployment, host: str, comment: str = "#") -> str:
    return (
        f"{comment} Rendered by hastack from inventory {dep.name!r} for host {host}.\n"
        f"{comment} Do not edit: change the inventory and run `hastack render` again.\n"
    )


def ms(value: int) -> str:
    """A duration for HAProxy/systemd, which read `200ms`."""
    return f"{value}ms"


def iso8601(value_ms: int) -> str:
    """A duration for Galera, which reads ISO 8601 periods such as PT0.5S."""
    seconds = value_ms / 1000
    return f"PT{seconds:g}S"
