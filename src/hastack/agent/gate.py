"""The kernel gate (dead-man switch) of a router namespace, as DESIGN-fencing.md fixes it.

An nftables forward hook at early priority with policy drop accepts packets only while an element with a
timeout is in the `alive` set; an `arp` table drops incoming ARP the same way, so a frozen node's kernel
does not answer for a floating IP either, and an output hook stops every IP packet the namespace would send
itself (IPv6 neighbour discovery and MLD from its link-local addresses carry the router's MAC: from a frozen
node they pulled the switches' forwarding entries back to it, in the lab). Outgoing ARP is gated too: the
kernel's own ARP probes from a frozen node (neighbour entries in PROBE state, sent by kernel timers) carry
the router's MAC and pull the switches back to it; the gratuitous ARP a router sends as it starts serving
goes out on a packet socket (agent/garp.py), which the arp hooks do not see. The node agent refreshes the
elements after each successful lease keepalive, with the timeout `t_send + TTL - margin - now`: counted from
when the keepalive was *sent*, so a delayed reply can only shorten it. If the agent freezes, dies or loses
the store, nobody refreshes, and the kernel stops the router forwarding before the lease can expire in the
store. The accept rule counts what it lets through: that counter is how experiments see, on the data plane,
whether a router forwarded.

`Gates` drives many gates from one process: per namespace a raw netlink socket opened from a thread that
has entered that namespace, so it stays bound there; a refresh is then one netlink transaction (~0.05 ms,
measured; `nfnl.py`) instead of a `nsenter nft` process (~5-15 ms). Reads (counters, whether open) go
through libnftables (the distribution's binding), opened the same way and only when asked for. An open
socket keeps a deleted namespace alive, so callers `keep_only` the namespaces that still exist.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from hastack.agent import nfnl

T = TypeVar("T")

TABLE = "fence"


class GateError(Exception):
    """nft refused a change to a gate, or the namespace is gone."""


# The lookup key of `alive` is the packet's mark masked to 0: a constant, so one element (0) opens
# everything. The mark itself is not the key: Neutron's L3 agent marks packets in its iptables mangle chains.
# Two sets, both needed: `alive` holds one element with a relative timeout (the kernel runs it out by
# itself), `until` one interval of wall-clock time [0, deadline] (`meta time`): the relative timeout is
# computed before the write, so an agent stalled between the two would set a stale one; the absolute
# deadline is fixed from the keepalive's send time and a stall cannot move it. A clock stepped back could
# lengthen the absolute bound; the relative one still holds then.
_SETS = """  set alive {
    type mark
    flags timeout
  }
  set until {
    typeof meta time
    flags interval
  }
"""
_OPEN = "meta mark & 0x00000000 @alive meta time @until"
RULESET = f"""table inet {TABLE} {{
{_SETS}  chain gate {{
    type filter hook forward priority -300; policy drop;
    {_OPEN} counter accept
  }}
  chain local_out {{
    type filter hook output priority -300; policy drop;
    {_OPEN} accept
  }}
}}
table arp {TABLE} {{
{_SETS}  chain arp_in {{
    type filter hook input priority -300; policy drop;
    {_OPEN} accept
  }}
  chain arp_out {{
    type filter hook output priority -300; policy drop;
    {_OPEN} accept
  }}
}}
"""


def install_batch() -> str:
    """Replace the gate tables whole, shut (no element yet). Idempotent; part of a router's first batch."""
    tables = "".join(f"table {f} {TABLE}\ndelete table {f} {TABLE}\n" for f in ("inet", "arp"))
    return tables + RULESET


def apply(netns: str, batch: str) -> None:
    """Apply one nft batch (atomic) inside the named network namespace, with a process of its own."""
    argv = ["nsenter", f"--net={netns_path(netns)}", "--", "nft", "-f", "-"]
    try:
        done = subprocess.run(argv, input=batch, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GateError(f"gate of {netns}: {e}") from e
    if done.returncode != 0:
        raise GateError(f"gate of {netns}: {done.stderr.strip()}")


def install(netns: str) -> None:
    """Put the gate in a namespace, shut, with a process of its own (routers get it in their first batch)."""
    apply(netns, install_batch())


def ensure_installed(netns: str) -> bool:
    """Install the gate, shut, unless the namespace has one already (a gate must never be reset: that
    would shut an open one); whether it was installed now. For routers built by others (Neutron). A gate
    of an earlier make (no wall-clock deadline set) is replaced."""
    argv = ["nsenter", f"--net={netns_path(netns)}", "--", "nft", "list", "set", "arp", TABLE, "until"]
    try:
        listed = subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GateError(f"gate of {netns}: {e}") from e
    if not listed:
        install(netns)
    return not listed


@dataclass
class _Handle:
    inode: int  # which namespace the name meant when the handles were opened
    sock: socket.socket  # raw netlink, for the writes (agent/nfnl.py)
    nft: Any = None  # a libnftables context, opened only for reads (experiments, tests)


class Gates:
    """In-process handles on the gates of many router namespaces (see the module docstring): the writes
    go over a raw netlink socket per namespace (nfnl.py: ~0.05 ms a refresh, a file descriptor each);
    the reads (`forwarded`, `is_open`) through a libnftables context opened on first use."""

    def __init__(self) -> None:
        self._handles: dict[str, _Handle] = {}
        self._seq = 1

    def refresh(self, netns: str, timeout_ms: int, until_ns: int) -> None:
        """Open the gate for `timeout_ms` from the kernel's write, and never past `until_ns` (wall clock)."""
        self._send(netns, lambda seq: nfnl.refresh(TABLE, timeout_ms, until_ns, seq))

    def close(self, netns: str) -> None:
        self._send(netns, lambda seq: nfnl.close(TABLE, seq))

    def refresh_many(self, namespaces: list[str], timeout_ms: int, until_ns: int) -> list[str]:
        """Refresh many gates with one timeout and deadline: one batch, built once, sent on every
        namespace's socket, then every acknowledgement read. The namespaces whose gate could not be
        refreshed (gone)."""
        self._seq = (self._seq + 16) % 2**31
        data, acks = nfnl.refresh(TABLE, timeout_ms, until_ns, self._seq)
        sent, failed = [], []
        for ns in namespaces:
            try:
                handle = self._handle(ns)
                handle.sock.send(data)
                sent.append((ns, handle))
            except (OSError, GateError):
                failed.append(ns)
        for ns, handle in sent:
            try:
                nfnl.receive(handle.sock, acks)
            except OSError:
                failed.append(ns)
        return failed

    def forwarded(self, netns: str) -> int:
        """Packets the gate has let through since it was installed."""
        out = self._list(netns, f"list chain inet {TABLE} gate")
        for item in json.loads(out).get("nftables", []):
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    return int(expr["counter"]["packets"])
        raise GateError(f"gate of {netns}: no counter on the accept rule")

    def is_open(self, netns: str) -> bool:
        """Whether the gate's element is present: the namespace would forward. Expired elements are not
        listed, whether or not the kernel has collected them yet."""
        out = self._list(netns, f"list set inet {TABLE} alive")
        return any(item.get("set", {}).get("elem") for item in json.loads(out).get("nftables", []))

    def exists(self, netns: str) -> bool:
        return os.path.exists(netns_path(netns))

    def keep_only(self, namespaces: Iterable[str]) -> None:
        """Drop the handles of every other namespace: their sockets must not keep a deleted one alive."""
        keep = set(namespaces)
        for ns in set(self._handles) - keep:
            self._handles.pop(ns).sock.close()

    def _send(self, netns: str, batch: Callable[[int], tuple[bytes, list[int]]]) -> None:
        handle = self._handle(netns)
        self._seq = (self._seq + 16) % 2**31  # a batch uses at most 12 sequence numbers
        try:
            nfnl.send(handle.sock, batch(self._seq))
        except OSError as e:
            raise GateError(f"gate of {netns}: {e}") from e

    def _list(self, netns: str, command: str) -> str:
        handle = self._handle(netns)
        if handle.nft is None:
            handle.nft = in_netns_thread(netns, _nft_context)
        handle.nft.set_json_output(True)
        rc, out, err = handle.nft.cmd(command)
        if rc != 0:
            raise GateError(f"gate of {netns}: {str(err).strip()}")
        return str(out)

    def _handle(self, netns: str) -> _Handle:
        # A name can be deleted and made again between two calls (a router rebuilt): a socket opened in
        # the old namespace would drive a gate nobody uses and keep that namespace alive. The inode says
        # which namespace a name means now.
        inode = _inode(netns)
        held = self._handles.get(netns)
        if held is not None and held.inode == inode:
            return held
        if held is not None:
            held.sock.close()
        self._handles[netns] = _Handle(inode, in_netns_thread(netns, nfnl.open_socket))
        return self._handles[netns]


def in_netns_thread(netns: str, make: Callable[[], T]) -> T:
    """`make()` run in a thread that has entered `netns` (its sockets stay bound there); the thread ends
    right after, so it never has to go back. GateError if the namespace is gone or was replaced."""
    from pyroute2.netns import setns  # type: ignore[import-untyped]

    made: dict[str, Any] = {}

    def enter_and_make() -> None:
        try:
            inode = _inode(netns)
            setns(netns, flags=0)  # flags=0: never create a namespace that is gone
            if os.stat("/proc/thread-self/ns/net").st_ino != inode:
                raise GateError(f"namespace {netns} was replaced while entering it")
            made["value"] = make()
        except (OSError, GateError) as e:
            made["error"] = e

    worker = threading.Thread(target=enter_and_make, name=f"gate-{netns}")
    worker.start()
    worker.join()
    if "error" in made:
        raise GateError(f"gate of {netns}: {made['error']}") from made["error"]
    return made["value"]  # type: ignore[no-any-return]


def netns_path(netns: str) -> str:
    """A namespace's file: a name is one of /run/netns; a path (another mount namespace's, reached through
    /proc/PID/root, as experiments do under profile openstack) is taken as it is."""
    return netns if netns.startswith("/") else f"/run/netns/{netns}"


def _inode(netns: str) -> int:
    try:
        return os.stat(netns_path(netns)).st_ino
    except OSError as e:
        raise GateError(f"no namespace {netns}") from e


def _nft_context() -> Any:
    import nftables  # type: ignore[import-untyped]  # Debian's python3-nftables, linked by setup.sh

    nft = nftables.Nftables()
    rc, _out, err = nft.cmd(f"list table inet {TABLE}")  # opens its socket now, in this namespace
    if rc != 0:
        raise GateError(str(err).strip())
    return nft
