"""The gate's timing rule (DESIGN-fencing.md): counted from the keepalive's send time, minus the margin."""

from __future__ import annotations

from hastack.agent.gate import gate_timeout_ms, refresh_batch


def test_timeout_counts_from_the_send_not_the_reply() -> None:
    assert gate_timeout_ms(t_send=100.0, ttl_s=1.0, margin_ms=100, now=100.0) == 900
    assert gate_timeout_ms(t_send=100.0, ttl_s=1.0, margin_ms=100, now=100.6) == 300  # a slow reply
    assert gate_timeout_ms(t_send=100.0, ttl_s=1.0, margin_ms=100, now=100.9) is None  # too late: stay shut
    assert gate_timeout_ms(t_send=100.0, ttl_s=1.0, margin_ms=100, now=102.0) is None


def test_refresh_is_one_atomic_batch_that_never_closes_the_gate() -> None:
    lines = refresh_batch(250).splitlines()
    assert lines == [
        "add element inet fence alive { 0 timeout 250ms }",
        "delete element inet fence alive { 0 }",
        "add element inet fence alive { 0 timeout 250ms }",
        "add element arp fence alive { 0 timeout 250ms }",
        "delete element arp fence alive { 0 }",
        "add element arp fence alive { 0 timeout 250ms }",
    ]
