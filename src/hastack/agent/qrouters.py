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

from hastack.agent import garp, gate

log = logging.getLogger(__name__)
PREFIX = "qrouter-"
NETNS_DIR = Path("/run/netns")
INTEGRATION_BRIDGE = "br-int"
# Until the OVS agent has wired the new ports (its rpc_loop every 2 s, then the server's answers: up to
# ~20 s on a loaded 2-core lab) and once more after.
ANNOUNCE_S = (0.0, 0.3, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0)


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
        self.announcer = garp.Announcer()

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
            except FileNotFoundError:
                continue  # removed since the listing
            except (OSError, gate.GateError) as e:
                # Not a router of ours until it is gated: it opens nothing, and this is said every time.
                log.error("router namespace %s has no gate (it is not served from here): %s", ns, e)
        self.gated = gated
        for ns in set(self.announcer.namespaces()) - set(found.values()):
            # Deleted (Neutron moved the router away): an open socket would keep the namespace, and its
            # veths, alive, and the next build of that router here would fail on "tap... already exists".
            self.announcer.forget(ns)
        return {router: ns for router, ns in found.items() if ns in gated}

    def version(self) -> object:
        try:
            return self.netns_dir.stat().st_mtime_ns  # a namespace added or removed changes it
        except OSError:
            return None

    def opened(self, namespaces: list[str]) -> None:
        """Announce the routers now served here: gratuitous ARP for every address of their qg- and qr-
        ports, on ANNOUNCE_S. Neutron's L3 agent sends its own right after plugging a port, before the
        OVS agent has wired it (the port sits in the dead VLAN for seconds), so those are lost and the
        switches keep sending the router's traffic to the old node until their entries age out."""
        items = []
        for ns in namespaces:
            try:
                shown = json.loads(_run(["ip", "-n", ns, "-json", "addr", "show"]) or "[]")
            except CleanupError as e:
                log.info("router namespace %s not announced: %s", ns, e)
                continue
            for link in shown:
                addresses = tuple(a["local"] for a in link.get("addr_info", []) if a.get("family") == "inet")
                if link["ifname"][:3] in ("qr-", "qg-") and addresses:
                    items.append(garp.Announcement(ns, link["ifname"], link["address"], addresses))
        self.announcer.announce(items, ANNOUNCE_S)

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
        # An open socket keeps a deleted namespace, and so its veths, alive: then the L3 agent that
        # builds the router here again fails ("tap... already exists"). Close ours, delete the taps.
        self.announcer.forget(ns)
        self.gated.pop(ns, None)
        _run(["ip", "netns", "delete", ns])
        for tap in taps:
            with contextlib.suppress(CleanupError):
                _run(["ip", "link", "delete", tap])
        if taps:
            commands: list[str] = []
            for tap in taps:
                commands += ["--", "--if-exists", "del-port", INTEGRATION_BRIDGE, tap]
            _run(["ovs-vsctl", "--timeout=10", *commands])
