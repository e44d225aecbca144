"""The lab's boundary to the kernel: iproute2 commands, ensure-style and confirmed by polling.

Every failure here is a LabError raised from its cause; the CLI catches it in one place.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

NEEDED_TOOLS = (
    "bridge",
    "tc",
    "ping",
    "nsenter",
    "ip",
    "nft",
    "etcd",
    "etcdctl",
    "mariadbd",
    "mariadb",
    "rsync",
    "haproxy",
    "keepalived",
    "curl",
    "unshare",
)

Progress = Callable[[str], None]


class LabError(Exception):
    """The lab could not do what was asked; the message says what and why."""


def run(
    argv: Sequence[str],
    timeout: float = 30,
    check: bool = True,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv; LabError with its stderr if it fails. A secret goes in `env` or `stdin`, never in argv:
    an argument is readable by every user in /proc/PID/cmdline, and is quoted in this function's errors."""
    try:
        result = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=stdin,
            env={**os.environ, **env} if env else None,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"`{' '.join(argv)}` failed: {e}") from e
    if check and result.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed: {(result.stderr or result.stdout).strip()}")
    return result


def write_with_mode(path: Path, text: str, mode: int) -> None:
    """Write `text` to `path` with `mode` set before the first byte: a secret is never readable by others,
    not even while the file is written (an existing file gets the mode too)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(fd, mode)
        f.write(text)


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    """argv in `netns` through `ip netns exec`: a private mount namespace with /etc/netns/NS files."""
    return ["ip", "netns", "exec", netns, *argv]


def in_netns_shared_mounts(netns: str, argv: Sequence[str]) -> list[str]:
    """argv in `netns` only: namespaces it creates with `ip netns add` are visible to everyone (a private
    mount namespace, as `ip netns exec` makes, would keep their bind mounts to itself)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]


def http_ok(netns: str, url: str, timeout_s: float = 1.0) -> bool:
    """Whether a GET of `url` from inside `netns` answers with a 2xx/3xx status."""
    argv = ["curl", "-sf", "-o", "/dev/null", "--max-time", f"{timeout_s:g}", url]
    return run(in_netns(netns, argv), check=False, timeout=timeout_s + 5).returncode == 0


def poll(what: str, done: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """Wait until `done()` holds; LabError naming `what` if it does not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def check_machine() -> None:
    """Refuse to start without root or without the tools the lab drives."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, veth links, daemons)")
    missing = [t for t in NEEDED_TOOLS if shutil.which(t) is None]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)} (run scripts/setup.sh)")


def root_routes() -> list[IPv4Network]:
    """The IPv4 destinations routed in the root namespace, without the default route."""
    routes: list[dict[str, Any]] = json.loads(
        run(["ip", "-json", "-4", "route", "show", "table", "all"]).stdout
    )
    nets = []
    for r in routes:
        dst = r.get("dst", "")
        if dst in ("default", "") or r.get("type") in ("broadcast", "local", "multicast"):
            continue
        nets.append(IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    return nets


def overlapping_routes(ranges: Sequence[IPv4Network]) -> list[tuple[IPv4Network, IPv4Network]]:
    return [(mine, route) for mine in ranges for route in root_routes() if mine.overlaps(route)]


def netns_list() -> set[str]:
    out = run(["ip", "-json", "netns", "list"]).stdout.strip()
    return {n["name"] for n in json.loads(out)} if out else set()


def netns_pids(name: str) -> list[int]:
    """The processes living in a namespace ([] if it does not exist)."""
    if name not in netns_list():
        return []
    return [int(pid) for pid in run(["ip", "netns", "pids", name]).stdout.split()]


def netns_exists(name: str) -> bool:
    """Whether the named namespace exists (one stat: listing them all would be slow with 1000 routers)."""
    return Path("/run/netns", name).exists()


def ensure_netns(name: str) -> None:
    if not netns_exists(name):
        run(["ip", "netns", "add", name])
    poll(f"namespace {name}", lambda: netns_exists(name), timeout=5)
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def delete_netns(name: str) -> None:
    """Remove a namespace the lab made (its links go with it); nothing if it is already gone."""
    if netns_exists(name):
        run(["ip", "netns", "delete", name])
    poll(f"namespace {name} to go", lambda: not netns_exists(name), timeout=5)


def link_exists(netns: str, ifname: str) -> bool:
    return run(in_netns(netns, ["ip", "link", "show", "dev", ifname]), check=False).returncode == 0


def ensure_bridge(netns: str, bridge: str) -> None:
    if not link_exists(netns, bridge):
        run(in_netns(netns, ["ip", "link", "add", bridge, "type", "bridge", "stp_state", "0"]))
    run(in_netns(netns, ["ip", "link", "set", bridge, "up"]))


def ensure_veth(host_ns: str, host_if: str, switch_ns: str, switch_if: str, bridge: str) -> None:
    """A veth pair from a host namespace to a port of the switch namespace's bridge."""
    if not link_exists(host_ns, host_if):
        # Made inside the switch namespace, then one end moved: the root namespace never holds either end.
        if not link_exists(switch_ns, switch_if):
            run(
                in_netns(switch_ns, ["ip", "link", "add", switch_if, "type", "veth", "peer", "name", host_if])
            )
        run(in_netns(switch_ns, ["ip", "link", "set", host_if, "netns", host_ns]))
    run(in_netns(switch_ns, ["ip", "link", "set", switch_if, "master", bridge, "up"]))
    run(in_netns(host_ns, ["ip", "link", "set", host_if, "up"]))
    poll(f"{host_if} in {host_ns}", lambda: link_exists(host_ns, host_if), timeout=5)


def ensure_address(netns: str, ifname: str, cidr: str) -> None:
    shown = run(in_netns(netns, ["ip", "-json", "addr", "show", "dev", ifname])).stdout
    have = {f"{a['local']}/{a['prefixlen']}" for link in json.loads(shown) for a in link.get("addr_info", [])}
    if cidr not in have:
        run(in_netns(netns, ["ip", "addr", "add", cidr, "dev", ifname]))
