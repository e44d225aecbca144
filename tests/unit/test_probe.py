"""The probes' parsing of real tool output."""

from __future__ import annotations

import os
import subprocess
import sys

from hastack.bench.probe import PASSWORD_ENV, parse_ping_line


def test_ping_reply_lost_and_other_lines() -> None:
    reply = parse_ping_line(
        "[1795620875.892316] 64 bytes from 10.244.0.16: icmp_seq=1 ttl=63 time=0.061 ms\n"
    )
    assert reply == {"t": 1795620875.892316, "ok": True, "ms": 0.061, "seq": 1}
    lost = parse_ping_line("[1795620876.064445] no answer yet for icmp_seq=7\n")
    assert lost == {"t": 1795620876.064445, "ok": False, "ms": None, "seq": 7}
    assert parse_ping_line("PING 10.244.0.16 (10.244.0.16) 56(84) bytes of data.\n") is None
    assert parse_ping_line("3 packets transmitted, 3 received, 0% packet loss, time 112ms\n") is None


def test_echo_request_and_reply_parsing() -> None:
    from hastack.bench import sweep

    request = sweep.echo_request(0x1234, 7)
    assert request[:2] == b"\x08\x00"
    assert sweep.checksum(request) == 0
    reply = bytearray(b"\x45" + bytes(11) + bytes([10, 244, 0, 70]) + bytes(4) + request)
    reply[20] = 0  # echo reply
    assert sweep.parse_reply(bytes(reply), 0x1234) == ("10.244.0.70", 7)
    assert sweep.parse_reply(bytes(reply), 0x9999) is None  # another sweeper's
    assert sweep.parse_reply(bytes(reply[:24]), 0x1234) is None  # truncated
    assert sweep.parse_reply(b"\x45" + bytes(19) + request, 0x1234) is None  # a request, not a reply


def test_a_probe_takes_its_password_from_the_environment_only() -> None:
    # An argument would be readable by every user of the machine in /proc/PID/cmdline.
    probe = [sys.executable, "-m", "hastack.bench.probe", "keystone", "--url", "http://127.0.0.1:1/v3"]
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV}
    given = subprocess.run([*probe, "--password", "pw"], capture_output=True, text=True, env=env, check=False)
    assert given.returncode == 2
    assert "unrecognized arguments: --password pw" in given.stderr
    missing = subprocess.run(probe, capture_output=True, text=True, env=env, check=False)
    assert missing.returncode == 2
    assert f"keystone needs its password in the environment variable {PASSWORD_ENV}" in missing.stderr
