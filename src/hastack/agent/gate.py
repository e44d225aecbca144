"""The kernel gate (dead-man switch) of a router namespace, as DESIGN-fencing.md fixes it.

An nftables forward hook at early priority with policy drop accepts packets only while an element with a
timeout is in the `alive` set. The node agent refreshes the element after each successful lease
keepalive, with the timeout `t_send + TTL - margin - now`: counted from when the keepalive was *sent*, so a
delayed reply can only shorten it. If the agent freezes, dies or loses the store, nobody refreshes, and the
kernel stops the router forwarding before the lease can expire in the store.
"""

from __future__ import annotations

import subprocess

TABLE = "fence"


class GateError(Exception):
    """nft refused a change to a gate."""


def _nft(netns: str, batch: str) -> None:
    """Apply one nft batch (atomic) inside the named network namespace."""
    argv = ["nsenter", f"--net=/run/netns/{netns}", "--", "nft", "-f", "-"]
    try:
        done = subprocess.run(argv, input=batch, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GateError(f"gate of {netns}: {e}") from e
    if done.returncode != 0:
        raise GateError(f"gate of {netns}: {done.stderr.strip()}")


RULESET = f"""table inet {TABLE} {{
  set alive {{
    type mark
    flags timeout
  }}
  chain gate {{
    type filter hook forward priority -300; policy drop;
    meta mark @alive accept
  }}
}}
"""


def gate_timeout_ms(t_send: float, ttl_s: float, margin_ms: float, now: float) -> int | None:
    """How long the gate may stay open after a keepalive sent at `t_send` succeeded; None: keep it shut.

    The store expires the lease no earlier than t_send + TTL (it cannot have received the request before
    it was sent), so the gate closes `margin_ms` before that, whatever the reply's delay."""
    remaining = (t_send + ttl_s - now) * 1000 - margin_ms
    return int(remaining) if remaining >= 1 else None


def refresh_batch(timeout_ms: int) -> str:
    """One atomic nft transaction: works whether the element exists or not, never closes the gate."""
    element = f"add element inet {TABLE} alive {{ 0 timeout {timeout_ms}ms }}"
    return f"{element}\ndelete element inet {TABLE} alive {{ 0 }}\n{element}\n"


def close_batch() -> str:
    return f"flush set inet {TABLE} alive\n"


def install(netns: str) -> None:
    """Put the gate in the namespace, shut (no element yet). Idempotent: the table is replaced whole."""
    batch = f"table inet {TABLE}\ndelete table inet {TABLE}\n{RULESET}"
    _nft(netns, batch)


def refresh(netns: str, timeout_ms: int) -> None:
    _nft(netns, refresh_batch(timeout_ms))


def close(netns: str) -> None:
    """Stop forwarding now (the L3 agent died or the lease is revoked)."""
    _nft(netns, close_batch())
