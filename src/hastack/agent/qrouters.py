"""The node agent's view of a real neutron-l3-agent's routers (agent.node.RouterHost): the `qrouter-<id>`
namespaces of this host. Runs where the L3 agent runs: in the host's network and mount namespaces.

`remove` is the cleanup after the L3 agent died, as neutron-netns-cleanup and neutron-ovs-cleanup would do
it: the processes Neutron left in the namespace (metadata proxy), the namespace, and the Open vSwitch
ports of its veths (with `ovs_use_veth`, port `qr-X`/`qg-X` inside has its peer `tapX` on br-int), which
would otherwise stay on the bridge as dead ports.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
from pathlib import Path

from hastack.agent import gate

log = logging.getLogger(__name__)
PREFIX = "qrouter-"
NETNS_DIR = Path("/run/netns")
INTEGRATION_BRIDGE = "br-int"


class CleanupError(Exception):
    """A router namespace could not be removed."""


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CleanupError(f"`{' '.join(argv)}`: {e}") from e
    if done.returncode != 0:
        raise CleanupError(f"`{' '.join(argv)}`: {(done.stderr or done.stdout).strip()}")
    return done.stdout


class NeutronRouterHost:
    def __init__(self, netns_dir: Path = NETNS_DIR) -> None:
        self.netns_dir = netns_dir
        self.gated: dict[str, int] = {}  # namespace -> inode of the one whose gate this agent made sure of

    def present(self) -> dict[str, str]:
        """Router id -> namespace, for the routers here that have their gate. The L3 agent knows nothing
        of gates: the first time a namespace is seen, its gate is put in, shut (the node agent opens it if
        the router is bound here). Until then a new router forwards ungated, which is safe: Neutron
        builds a router only where the record has moved it (automatic L3 failover off)."""
        try:
            names = os.listdir(self.netns_dir)
        except FileNotFoundError:
            return {}
        found = {name.removeprefix(PREFIX): name for name in names if name.startswith(PREFIX)}
        gated: dict[str, int] = {}
        for ns in found.values():
            try:
                inode = (self.netns_dir / ns).stat().st_ino
                if self.gated.get(ns) != inode:
                    gate.ensure_installed(ns)
                gated[ns] = inode
            except (OSError, gate.GateError) as e:
                log.info("router namespace %s not gated yet: %s", ns, e)
        self.gated = gated
        return {router: ns for router, ns in found.items() if ns in gated}

    def version(self) -> object:
        try:
            return self.netns_dir.stat().st_mtime_ns  # a namespace added or removed changes it
        except OSError:
            return None

    def remove(self, router: str) -> None:
        """Best effort: the gate is shut already; what cannot be removed now is logged and left."""
        try:
            self._remove(router)
        except CleanupError as e:
            log.warning("router %s not cleaned up: %s", router, e)

    def _remove(self, router: str) -> None:
        ns = PREFIX + router
        if not (self.netns_dir / ns).exists():
            return
        links = json.loads(_run(["ip", "-n", ns, "-json", "link", "show"]) or "[]")
        taps = ["tap" + link["ifname"][3:] for link in links if link["ifname"][:3] in ("qr-", "qg-")]
        for pid in _run(["ip", "netns", "pids", ns]).split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        _run(["ip", "netns", "delete", ns])
        if taps:
            commands: list[str] = []
            for tap in taps:
                commands += ["--", "--if-exists", "del-port", INTEGRATION_BRIDGE, tap]
            _run(["ovs-vsctl", "--timeout=10", *commands])
