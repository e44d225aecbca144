"""The node agent of one network node: its lease in the store, the kernel gates of its routers, the cleanup.

Under policy `hastack` (DESIGN-fencing.md), while the local L3 agent lives the node agent holds a lease and a
node key bound to it, renews it every heartbeat, and after each renewal opens the gates of the routers the
store binds to this host until `t_send + TTL - margin`; gates of any other router here stay shut. When the L3
agent dies it shuts every gate, revokes the lease (the controller sees the node key vanish at once) and
removes the routers here (the paper's cleanup). Under `paper` the gates stay open with no lease, and the
cleanup still runs when the L3 agent dies; under `neutron` nothing is fenced and nothing cleaned up.

Two steps, both observe -> decide -> act and both returning a sentence: `renew` (every heartbeat: the lease
and the bindings) and `gate` (whenever the routers here change, so a router just built starts forwarding at
once, not at the next heartbeat). Collaborators come in through the constructor.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hastack import faultpoints
from hastack.agent.gate import GateError
from hastack.backends import record
from hastack.backends.base import BackendError
from hastack.faultpoints import FaultPoint
from hastack.fencing import ANCHOR_OPEN_S
from hastack.grants.rounds import GrantRounds
from hastack.store import KeyValue, Store, StoreError, keys

CHUNK = 64  # gates refreshed with one timeout and one stall check
RENEWAL_CALLS = 2  # what a renewal of a lease held asks etcd: the keepalive, then one read (`renew`)


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
    def refresh_many(self, namespaces: list[str], timeout_ms: int, until_ns: int) -> list[str]: ...
    def close(self, netns: str) -> None: ...
    def keep_only(self, namespaces: list[str]) -> None: ...
    def exists(self, netns: str) -> bool:
        """Whether the namespace exists (a gate that failed to shut in a namespace that is gone is moot)."""


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


class Confirmer(Protocol):
    """Every controller, asked directly (failsafe/peers.py): may this node keep its open gates?"""

    def confirm(self, host: str) -> tuple[bool, str]: ...


class NodeAgent:
    def __init__(
        self,
        store: Store,
        routers: RouterHost,
        gates: GateDriver,
        deployment: str,
        host: str,
        ttl_s: int,
        margin_ms: int,
        clock: Callable[[], float],
        wall: Callable[[], float],
        peers: Confirmer | None = None,
        fault: FaultPoint = faultpoints.none,
        grants: GrantRounds | None = None,
    ) -> None:
        """`clock` is monotonic: every duration is counted on it. `wall` is the kernel's `meta time` clock
        (CLOCK_REALTIME): each gate also gets its deadline as a wall-clock instant, fixed when the
        keepalive is sent, which no stall of this process before the write can move. `grants`: the
        rounds a grant thread sends to every controller, if grants are on; the gates then need them too
        (open until the earlier of the two deadlines)."""
        self.store, self.routers, self.gates, self.grants = store, routers, gates, grants
        self.deployment, self.host = deployment, host
        self.ttl_s, self.margin_ms, self.clock, self.wall, self.peers = ttl_s, margin_ms, clock, wall, peers
        self.fault = fault  # faultpoints: where a test stops this process for real
        self.key = keys.node_key(deployment, host)
        self.lease = 0
        self.open_until = 0.0  # clock time at which the gates must be shut; 0: shut now
        self.until_wall = 0.0  # the same deadline on the wall clock, for the kernel
        self.bound: frozenset[str] = frozenset()
        self.bound_revision = 0  # the store revision `bound` was read at (grants count only at or after R_N)
        self.granted_until = 0.0  # the grants' deadline the gates were last refreshed with
        # The revision of the bindings read the gates were last applied from, under `hastack` (0: none):
        # told to the controllers, so that a router unbound from here may be bound elsewhere at once.
        self.applied_revision = 0
        self.last_policy = "hastack"
        self.failsafe_on = True  # the control key `failsafe`, as last read
        self.held = False  # the gates are held by failsafe rounds: none may open that is shut
        self.renew_soon = False  # a gate was shut again after a stall: renew now, not at the next beat
        self.applied: dict[str, bool] = {}  # namespace -> whether this agent last opened (or shut) it
        # Held while the gates are applied and while what they follow changes, never while the store is
        # waited for: with grants on, gates live 200 ms, and another thread refreshes them on every
        # grant while a renewal waits on etcd (a renewal that held it starved every gate in the lab
        # whenever etcd re-elected its leader). The L3 agent's death path holds it throughout.
        self.lock = threading.RLock()
        self.deaths = 0  # how many times the L3 agent died: a renewal begun before applies nothing

    def read_control(self) -> str:
        """The policy in force (and whether failsafe is on), in one read."""
        kvs, _rev = self.store.get_prefix(keys.control_prefix(self.deployment))
        return self._control(kvs)

    def _control(self, kvs: list[KeyValue]) -> str:
        control = {kv.key: kv.value for kv in kvs}
        self.failsafe_on = control.get(keys.failsafe_key(self.deployment)) != "off"
        return control.get(keys.policy_key(self.deployment), "hastack")

    def _control_and_bound(self) -> tuple[str, tuple[frozenset[str], int]]:
        """The policy and the routers bound here, in one read (one transaction, one revision)."""
        prefixes = [keys.control_prefix(self.deployment), keys.bindings_prefix(self.deployment)]
        (control, bindings), rev = self.store.get_prefixes(prefixes)
        return self._control(control), (self._here(bindings), rev)

    def _here(self, bindings: list[KeyValue]) -> frozenset[str]:
        return frozenset(r for r, h in record.parse(bindings).items() if h == self.host)

    def renew(self, l3_alive: bool) -> str:
        """Every heartbeat: hold the lease (or not), learn the bindings, then gate."""
        deaths = self.deaths
        try:
            if l3_alive and self.lease and self.last_policy == "hastack":
                # As it is nearly always: two round trips, the keepalive and then one read of the policy
                # and the bindings. A store slow to answer costs the gates less the fewer calls a renewal
                # makes. A policy switched meanwhile drops the lease just renewed (below).
                said, deadline = self._keepalive()
                policy, bound = self._control_and_bound()
            else:
                policy, said, deadline, bound = self.read_control(), "", None, (frozenset[str](), 0)
                if policy == "hastack" and l3_alive:
                    said, deadline = self._keepalive()
                    # The bindings are read after the keepalive was sent, and only a renewal that read them
                    # opens anything: a deadline never goes with bindings older than its keepalive.
                    bound = self._bound()
            if policy == "hastack" and l3_alive and deadline is not None:
                with self.lock:
                    if self.deaths != deaths:
                        return "the L3 agent died during the renewal: nothing applied"
                    self.last_policy, (self.bound, self.bound_revision), self.held = policy, bound, False
                    self.open_until, self.until_wall = deadline
                    return f"{said}; {self.gate()}"
            return self._unfenced(policy, l3_alive)
        except (StoreError, BackendError) as e:
            return self._failsafe(f"store unreachable ({e})", l3_alive, deaths)

    def _unfenced(self, policy: str, l3_alive: bool) -> str:
        """No lease to hold: an anchor policy in force, or no L3 agent running here."""
        self.last_policy = policy
        self._drop_lease()
        bound = self._bound()
        with self.lock:
            if policy != "hastack":
                # Neutron keeps forwarding on a dead agent's node; the paper's cleanup removed the routers.
                unfenced = l3_alive or policy == "neutron"
                self.open_until, self.until_wall = (
                    (self.clock() + ANCHOR_OPEN_S, self.wall() + ANCHOR_OPEN_S) if unfenced else (0.0, 0.0)
                )
                said = f"policy {policy}: no lease, gates {'held open' if unfenced else 'shut'}"
            else:
                self.open_until = self.until_wall = 0.0
                said = "no L3 agent running: holding no lease"
            (self.bound, self.bound_revision), self.held = bound, False
            return f"{said}; {self.gate()}"

    def _failsafe(self, why: str, l3_alive: bool, deaths: int) -> str:
        """The store did not answer. Nothing is refreshed, so the gates run out by themselves before the
        lease can expire, unless every controller confirms a failsafe round: then the gates still open
        get a deadline counted from the round's send time, as from a keepalive (DESIGN-fencing.md)."""
        left = self._left_ms()
        if self.peers is None or not self.failsafe_on or self.last_policy != "hastack" or not l3_alive:
            return f"{why}; gates close by themselves in {left} ms"
        if self.open_until <= self.clock():  # the lease's chain, whatever the grants say now
            return f"{why}; gates shut, failsafe keeps open only what is open"
        t_round, t_wall = self.clock(), self.wall()
        confirmed, said = self.peers.confirm(self.host)
        if not confirmed:
            return f"{why}; failsafe refused ({said}): gates close by themselves in {self._left_ms()} ms"
        extra = self.ttl_s - self.margin_ms / 1000
        with self.lock:
            if self.deaths != deaths:
                return f"{why}; the L3 agent died meanwhile: nothing applied"
            if self.open_until <= self.clock():
                return f"{why}; failsafe confirmed too late: gates shut"
            self.open_until = max(self.open_until, t_round + extra)
            self.until_wall, self.held = max(self.until_wall, t_wall + extra), True
            return f"{why}; failsafe: {said}; {self.gate()}"

    def _keepalive(self) -> tuple[str, tuple[float, float]]:
        """Keep the lease alive (or take a new one, with its node key); what was done, and the deadline
        this keepalive allows, on both clocks: its send time + TTL - margin (read once, before sending)."""
        t_send, t_wall = self.clock(), self.wall()
        ttl = self.store.keepalive(self.lease) if self.lease else -1
        if ttl >= 0:
            extra = ttl - self.margin_ms / 1000
            return f"renewed lease {self.lease:x}", (t_send + extra, t_wall + extra)
        # Gates shut before the new lease exists: nothing forwards on a lease the store has ended.
        with self.lock:
            self.lease, self.open_until, self.until_wall = 0, 0.0, 0.0
            self.gate()
        t_send, t_wall = self.clock(), self.wall()
        lease = self.store.grant(self.ttl_s)
        try:
            self.store.put(self.key, json.dumps({"host": self.host, "lease": lease}), lease=lease)
        except StoreError:
            # A lease without its node key must not be kept: the controller would see the node as gone
            # and move its routers while this agent renews and forwards. Take a new one next time.
            with contextlib.suppress(StoreError):
                self.store.revoke(lease)
            raise
        self.lease = lease
        extra = self.ttl_s - self.margin_ms / 1000
        return f"took lease {lease:x}", (t_send + extra, t_wall + extra)

    def adopt(self) -> bool:
        """After a restart: keep the lease a previous process of this agent left, if it still lives."""
        kv = self.store.get(self.key)
        if kv is None or not kv.lease or self.store.keepalive(kv.lease) < 0:
            return False
        self.lease = kv.lease
        return True

    def _bound(self) -> tuple[frozenset[str], int]:
        """The routers bound here and the revision they were read at. Read after the keepalive was sent:
        a router moved away before that read is not opened, and one moved away after it is shut by the
        gate's timeout before the mover may assume it stopped."""
        (bindings,), rev = self.store.get_prefixes([keys.bindings_prefix(self.deployment)])
        return self._here(bindings), rev

    def routers_changed(self) -> str:
        """A router was built or removed here: learn the bindings again and gate the routers whose gate
        should change, at once (the others wait for the next renewal: with many routers being built,
        refreshing every gate after each one would cost the square of their number)."""
        # Any read after the last keepalive was sent will do (a router bound here since opens at once).
        # On failure keep the last read: it was made after the keepalive the deadline counts from.
        deaths, bound = self.deaths, None
        with contextlib.suppress(StoreError, BackendError):
            bound = self._bound()
        with self.lock:
            if bound is not None and self.deaths == deaths:
                self.bound, self.bound_revision = bound
            return self.gate(only_changed=True)

    def grants_renewed(self) -> bool:
        """Whether to refresh the open gates with the grants' later deadline now: once half of what the
        last refresh allowed has passed. Each refresh writes to every router namespace here: at every
        round (20 a second), a node serving 1000 routers would write 20000 times a second."""
        g = self.grants
        if g is None or self.last_policy != "hastack" or g.deadline() == self.granted_until:
            return False
        return self.granted_until - self.clock() < (g.grant_s - g.margin_s) / 2

    def _deadline(self) -> tuple[float, float]:
        """Until when the gates may stay open, on both clocks: the lease's (or failsafe's) deadline, and
        under `hastack` with grants on, the grants' too, whichever comes first."""
        if self.grants is None or self.last_policy != "hastack":
            return self.open_until, self.until_wall
        return min(self.open_until, self.grants.deadline()), min(self.until_wall, self.grants.deadline_wall())

    def gate(self, only_changed: bool = False) -> str:
        """Apply the last renewal to the routers present now (with `only_changed`, to those whose gate
        this agent has not yet opened or shut as the renewal says)."""
        with self.lock:
            return self._gate(only_changed)

    def _gate(self, only_changed: bool) -> str:
        present = self.routers.present()
        view = self.bound_revision
        if self.grants is not None:
            self.granted_until = self.grants.deadline()
        left = self._left_ms()
        # The anchor policies fence nothing: like Neutron, a router that forwarded here goes on while it
        # exists, bound here or not (under `neutron`, a dead agent's routers go on beside their
        # successors). Standbys never forwarded, so they stay shut (the L3 agent removes them).
        bound = self.bound
        if self.last_policy != "hastack":
            bound = bound | {r for r, ns in present.items() if self.applied.get(ns)}
        if self.held:  # failsafe: keep open only what is open
            bound = frozenset(r for r in bound if self.applied.get(present.get(r, "")))
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
        # Every router not bound here in that read is shut now (or its namespace is gone). The anchors
        # keep open what forwarded: no word then.
        self.applied_revision = view if self.last_policy == "hastack" else 0
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
        self.fault("gate-write")
        gone = self.gates.refresh_many(chunk, left, self._until_ns())
        self.fault("gate-written")
        if self.clock() - before <= self.margin_ms / 2000:
            return gone, []
        # Stalled: refresh once more with a timeout read now (it replaces the stale one), and shut the
        # chunk only if that stalls too. Shutting at the first stall made gates flap on a loaded machine.
        before, left = self.clock(), self._left_ms()
        if left >= 1:
            gone += self.gates.refresh_many([ns for ns in chunk if ns not in gone], left, self._until_ns())
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

    def _until_ns(self) -> int:
        return int(self._deadline()[1] * 1e9)

    def _left_ms(self) -> int:
        # Rounded to 1 us first: binary floating point must not turn 900 ms into 899.
        return max(0, int(round((self._deadline()[0] - self.clock()) * 1000, 3)))

    def on_l3_death(self, cleanup: bool) -> str:
        """The L3 agent died: shut every gate now, end the lease, and (unless policy neutron) clean up. If
        a gate whose namespace still exists cannot be shut, the lease is not revoked but left to run out:
        that gate runs out before it (revoking would let the controller move the router at once)."""
        with self.lock:
            self.deaths += 1
            return self._on_l3_death(cleanup)

    def _on_l3_death(self, cleanup: bool) -> str:
        present = self.routers.present()
        self.open_until = self.until_wall = 0.0
        self.applied = {}
        stuck = []
        for ns in present.values():
            try:
                self.gates.close(ns)
            except GateError as e:
                if self.gates.exists(ns):
                    stuck.append(f"{ns} ({e})")
        if stuck:
            self.lease = 0  # not renewed, not revoked: it expires after every gate here has run out
            revoked = f"lease left to run out: {len(stuck)} gate(s) could not be shut, first {stuck[0]}"
        else:
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
        shut = len(present) - len(stuck)
        return f"L3 agent died: {shut} gates shut, {revoked}, {done}"

    def on_l3_death_under_policy(self) -> str:
        if self.last_policy == "neutron":
            return "L3 agent died: policy neutron, nothing fenced, routers left in place"
        return self.on_l3_death(cleanup=True)

    def _drop_lease(self) -> None:
        if self.lease:
            lease, self.lease = self.lease, 0
            self.store.revoke(lease)
