"""The node agent of one network node: its lease in the store, the kernel gates of its routers, the cleanup.

Under policy `hastack` (DESIGN-fencing.md), while the local L3 agent lives the node agent holds a lease and a
node key bound to it, renews it every heartbeat, and after each renewal opens the gates of the routers the
store binds to this host until `t_send + TTL - margin`; gates of any other router here stay shut. When the L3
agent dies it shuts every gate, revokes the lease (the controller sees the node key vanish at once) and
removes the routers here (the seed's cleanup). Under `paper` the gates stay open with no lease, and the
cleanup still runs when the L3 agent dies; under `neutron` nothing is fenced and nothing cleaned up.

Two steps, both observe -> decide -> act and both returning a sentence: `renew` (every heartbeat: the lease
and the bindings) and `gate` (whenever the routers here change, so a router just built starts forwarding at
once, not at the next heartbeat). Collaborators come in through the constructor.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hastack.agent.gate import GateError, gate_timeout_ms
from hastack.backends.base import BackendError
from hastack.store import Store, StoreError, keys

OPEN_FOREVER_MS = 3_600_000  # policies without fencing: refreshed every heartbeat, never runs out


CHUNK = 64  # gates refreshed with one timeout and one stall check


class RouterHost(Protocol):
    """The routers built on this host (lab: the lab L3 agent's records; Neutron: qrouter- namespaces)."""

    def present(self) -> dict[str, str]:
        """router id -> its namespace, for every router fully built here."""

    def version(self) -> object:
        """Changes whenever a router is built or removed here (cheap: polled every few ms)."""

    def remove(self, router: str) -> None: ...

    def opened(self, namespaces: list[str]) -> None:
        """These routers' gates were just opened here (they serve here now): announce them if the L3
        agent does not (the lab's does; Neutron's announcements race its OVS agent's port wiring)."""


class GateDriver(Protocol):
    def refresh_many(self, namespaces: list[str], timeout_ms: int) -> list[str]: ...
    def close(self, netns: str) -> None: ...
    def keep_only(self, namespaces: list[str]) -> None: ...


class Bindings(Protocol):
    def bindings(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class GatePlan:
    open: tuple[str, ...]  # namespaces to refresh
    shut: tuple[str, ...]  # namespaces to close


def plan_gates(bound: frozenset[str], present: dict[str, str], timeout_ms: int | None) -> GatePlan:
    """Open the gates of routers both built here and bound here, while the lease allows. Pure."""
    serve = sorted(r for r in present if r in bound) if timeout_ms is not None else []
    return GatePlan(
        tuple(present[r] for r in serve), tuple(present[r] for r in sorted(present) if r not in serve)
    )


class NodeAgent:
    def __init__(
        self,
        store: Store,
        bindings: Bindings,
        routers: RouterHost,
        gates: GateDriver,
        deployment: str,
        host: str,
        ttl_s: int,
        margin_ms: int,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.bindings, self.routers, self.gates = store, bindings, routers, gates
        self.deployment, self.host = deployment, host
        self.ttl_s, self.margin_ms, self.clock = ttl_s, margin_ms, clock
        self.key = keys.node_key(deployment, host)
        self.lease = 0
        self.open_until = 0.0  # clock time at which the gates must be shut; 0: shut now
        self.bound: frozenset[str] = frozenset()
        self.last_policy = "hastack"
        self.renew_soon = False  # a gate was shut again after a stall: renew now, not at the next beat
        self.applied: dict[str, bool] = {}  # namespace -> whether this agent last opened (or shut) it

    def policy(self) -> str:
        kv = self.store.get(keys.policy_key(self.deployment))
        return kv.value if kv else "hastack"

    def renew(self, l3_alive: bool) -> str:
        """Every heartbeat: hold the lease (or not), learn the bindings, then gate."""
        try:
            policy = self.last_policy = self.policy()
            if policy != "hastack":
                self._drop_lease()
                # Neutron keeps forwarding on a dead agent's node; the seed's cleanup removed the routers.
                unfenced = l3_alive or policy == "neutron"
                self.open_until = self.clock() + OPEN_FOREVER_MS / 1000 if unfenced else 0.0
                said = f"policy {policy}: no lease, gates {'held open' if unfenced else 'shut'}"
            elif not l3_alive:
                self._drop_lease()
                self.open_until = 0.0
                said = "no L3 agent running: holding no lease"
            else:
                said = self._keepalive()
            self._read_bindings()
        except (StoreError, BackendError) as e:
            # Nothing is refreshed: the gates run out by themselves before the lease can expire.
            return f"store unreachable ({e}); gates close by themselves in {self._left_ms()} ms"
        return f"{said}; {self.gate()}"

    def _keepalive(self) -> str:
        t_send = self.clock()
        ttl = self.store.keepalive(self.lease) if self.lease else -1
        if ttl < 0:
            # Gates shut before the new lease exists: nothing forwards on a lease the store has ended.
            self.open_until = 0.0
            self.gate()
            t_send = self.clock()
            self.lease = self.store.grant(self.ttl_s)
            self.store.put(self.key, json.dumps({"host": self.host, "lease": self.lease}), lease=self.lease)
            ttl, said = self.ttl_s, f"took lease {self.lease:x}"
        else:
            said = f"renewed lease {self.lease:x}"
        timeout = gate_timeout_ms(t_send, ttl, self.margin_ms, self.clock())
        self.open_until = 0.0 if timeout is None else self.clock() + timeout / 1000
        return said

    def adopt(self) -> bool:
        """After a restart: keep the lease a previous process of this agent left, if it still lives."""
        kv = self.store.get(self.key)
        if kv is None or not kv.lease or self.store.keepalive(kv.lease) < 0:
            return False
        self.lease = kv.lease
        return True

    def _read_bindings(self) -> None:
        # Read after the keepalive was sent: a router moved away before that read is not opened, and one
        # moved away after it is shut by the gate's timeout before the mover may assume it stopped.
        self.bound = frozenset(r for r, h in self.bindings.bindings().items() if h == self.host)

    def routers_changed(self) -> str:
        """A router was built or removed here: learn the bindings again and gate the routers whose gate
        should change, at once (the others wait for the next renewal: with many routers being built,
        refreshing every gate after each one would cost the square of their number)."""
        # On failure keep the bindings read with the last renewal: opening nothing new is safe.
        with contextlib.suppress(StoreError, BackendError):
            self._read_bindings()
        return self.gate(only_changed=True)

    def gate(self, only_changed: bool = False) -> str:
        """Apply the last renewal to the routers present now (with `only_changed`, to those whose gate
        this agent has not yet opened or shut as the renewal says)."""
        present = self.routers.present()
        left = self._left_ms()
        # The anchor policies fence nothing: like Neutron, a router that forwarded here goes on while it
        # exists, bound here or not (under `neutron`, a dead agent's routers go on beside their
        # successors). Standbys never forwarded, so they stay shut (the L3 agent removes them).
        bound = self.bound
        if self.last_policy != "hastack":
            bound = bound | {r for r, ns in present.items() if self.applied.get(ns)}
        plan = plan_gates(bound, present, left if left >= 1 else None)
        wanted = dict.fromkeys(plan.shut, False) | dict.fromkeys(plan.open, True)
        # Open gates are refreshed at every renewal; a gate this agent shut stays shut (the L3 agent builds
        # routers shut too), so it is not shut again: a node standing by for a thousand routers would
        # otherwise spend its renewals on them.
        todo = [
            ns
            for ns in plan.open + plan.shut
            if self.applied.get(ns) != wanted[ns] or (wanted[ns] and not only_changed)
        ]
        newly = [ns for ns in todo if wanted[ns] and self.applied.get(ns) is not True]
        failed, stalled = self._apply(
            [ns for ns in todo if not wanted[ns]], [ns for ns in todo if wanted[ns]]
        )
        if newly := [ns for ns in newly if self.applied.get(ns) is True]:
            self.routers.opened(newly)
        opened = len([ns for ns in todo if wanted[ns]]) - stalled - len([ns for ns in failed if wanted[ns]])
        kept = [ns for ns in present.values() if ns not in failed]
        self.applied = {ns: self.applied[ns] for ns in kept if ns in self.applied}
        self.gates.keep_only(kept)
        said_gone = f", {len(failed)} gone meanwhile" if failed else ""
        said_late = f", {stalled} shut again after a stall" if stalled else ""
        self.renew_soon = stalled > 0
        if only_changed:
            shut = len(todo) - opened - len(failed)
            return f"{opened} gates opened, {shut} shut, of {len(present)} routers here{said_gone}{said_late}"
        return f"{opened} gates open for {left} ms, {len(plan.shut)} shut{said_gone}{said_late}"

    def _apply(self, shutting: list[str], opening: list[str]) -> tuple[list[str], int]:
        """Shut and open those gates; the namespaces gone meanwhile, and how many were shut again after a
        stall. Remembers what it did in `applied`."""
        failed: list[str] = []
        for ns in shutting:
            try:
                self.gates.close(ns)
                self.applied[ns] = False
            except GateError:
                failed.append(ns)  # removed since `present` was read: nothing left to gate
        stalled = 0
        for i in range(0, len(opening), CHUNK):
            chunk = opening[i : i + CHUNK]
            gone, late = self._refresh(chunk)
            failed += gone
            stalled += len(late)
            self.applied.update({ns: ns not in late for ns in chunk if ns not in gone})
        return failed, stalled

    def _refresh(self, chunk: list[str]) -> tuple[list[str], list[str]]:
        """Open a chunk of gates until `open_until`, with one timeout read from the clock once; the
        namespaces gone meanwhile, and those shut again because this process stalled (a freeze, the
        scheduler) for longer than half the margin between reading the clock and the kernel taking the
        last timeout: an element could outlive the lease. Chunks keep that window short and a renewal
        of a thousand gates cheap (one batch, built once, sent on every gate's socket)."""
        before = self.clock()
        left = self._left_ms()
        if left < 1:
            late = [ns for ns in chunk if self._close_quietly(ns)]
            return [ns for ns in chunk if ns not in late], late
        gone = self.gates.refresh_many(chunk, left)
        if self.clock() - before <= self.margin_ms / 2000:
            return gone, []
        # Stalled: refresh once more with a timeout read now (it replaces the stale one), and shut the
        # chunk only if that stalls too. Shutting at the first stall made gates flap on a loaded machine.
        before, left = self.clock(), self._left_ms()
        if left >= 1:
            gone += self.gates.refresh_many([ns for ns in chunk if ns not in gone], left)
            if self.clock() - before <= self.margin_ms / 2000:
                return gone, []
        late = [ns for ns in chunk if ns not in gone and self._close_quietly(ns)]
        return [ns for ns in chunk if ns not in late], late

    def _close_quietly(self, ns: str) -> bool:
        try:
            self.gates.close(ns)
        except GateError:
            return False
        return True

    def _left_ms(self) -> int:
        # Rounded to 1 us first: binary floating point must not turn 900 ms into 899.
        return max(0, int(round((self.open_until - self.clock()) * 1000, 3)))

    def on_l3_death(self, cleanup: bool) -> str:
        """The L3 agent died: shut every gate now, end the lease, and (unless policy neutron) clean up."""
        present = self.routers.present()
        self.open_until = 0.0
        self.applied = {}
        for ns in present.values():
            with contextlib.suppress(GateError):  # already gone
                self.gates.close(ns)
        try:
            self._drop_lease()
            revoked = "lease revoked"
        except StoreError as e:
            revoked = f"lease not revoked ({e}): it runs out by itself"
        if cleanup:
            for router in present:
                self.routers.remove(router)
        self.gates.keep_only([] if cleanup else list(present.values()))
        done = f"removed {len(present)} routers" if cleanup else "routers left in place"
        return f"L3 agent died: {len(present)} gates shut, {revoked}, {done}"

    def on_l3_death_under_policy(self) -> str:
        if self.last_policy == "neutron":
            return "L3 agent died: policy neutron, nothing fenced, routers left in place"
        return self.on_l3_death(cleanup=True)

    def _drop_lease(self) -> None:
        if self.lease:
            lease, self.lease = self.lease, 0
            self.store.revoke(lease)
