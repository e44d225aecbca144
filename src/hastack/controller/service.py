"""The HA controller: one tick is observe -> decide -> act, and returns one sentence saying what it did.

Each tick: step the election (only the leader acts), read the store once, build the Snapshot, `decide`, apply
the moves through the NetworkBackend with the leader's fencing token, and reconcile HAProxy with the drains
operators asked for. Operators' requests (`pause`, `drain`, `move`...) are writes to the store or, for a
move, an immediate fenced move by the leader. Everything outside comes in through the constructor.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hastack.backends.base import BackendError, NetworkBackend
from hastack.controller import act, observe
from hastack.controller.decide import POLICIES, Move, Policy, Snapshot, decide, failure_reason, rebalance
from hastack.controller.definitions import Definitions
from hastack.controller.drains import Balancer, Drains
from hastack.controller.election import Election
from hastack.controller.guard import GuardedStore
from hastack.controller.liveness import Liveness, away, hold
from hastack.controller.metrics import Metrics
from hastack.fencing import ANCHOR_OPEN_S
from hastack.store import Compare, Delete, Put, Store, StoreError, keys

log = logging.getLogger("hastack.controller")


RECONCILE_S = 5.0  # how often the leader makes the backend follow the record (Neutron: a few GETs)


@dataclass(frozen=True)
class LastTick:
    """What the last tick saw and said: what `status` and the API answer from."""

    sentence: str
    time: float = 0.0
    leader: bool = False
    observed: observe.Observed | None = None
    policy: Policy | None = None
    quiet: bool = False  # a tick that only waited (a periodic policy's next check): not worth a log line


@dataclass
class Settings:
    deployment: str
    network_nodes: tuple[str, ...]
    lease_ttl_s: float
    tick_s: float
    api_servers: dict[str, list[str]] = field(default_factory=dict)  # host -> backends it serves in


class Controller:
    def __init__(
        self,
        store: Store,
        backend: NetworkBackend,
        election: Election,
        balancers: Sequence[Balancer],
        settings: Settings,
        clock: Callable[[], float],
        metrics: Metrics,
        mono: Callable[[], float],
        guard: GuardedStore | None = None,
        liveness: Liveness | None = None,
    ) -> None:
        """`clock` is wall-clock time (the L3 agents' heartbeats in the store are); every wait is counted
        on `mono`. `guard`: the failsafe side of `store` (controller/guard.py), when it is guarded.
        `liveness`: the grants (controller/liveness.py), when they are on."""
        self.store, self.backend, self.election, self.liveness = store, backend, election, liveness
        self.settings, self.clock, self.metrics = settings, clock, metrics
        self.mono, self.guard = mono, guard
        self.healthy_since: dict[str, float] = {}
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=500)
        self.last = LastTick("not started")
        self.last_decided = -1e9
        self.definitions = Definitions(backend.routers, mono)
        self.revision = 0
        self.reconciled = -1e9
        self.drains = Drains(balancers, settings.api_servers, mono)
        self.reconciler: threading.Thread | None = None
        self.reconcile_said = ""
        self.in_flight: set[str] = set()  # routers an operator's move holds unbound on purpose
        self.policy_seen = ("", 0.0)  # the policy in force and since when (monotonic)
        self.store_ok_since: float | None = None  # first good read after the last failure (monotonic)
        self.looked = False  # whether this process has read the store once
        # Nodes seen holding a lease since the policy last became `hastack`: their gates run out by
        # themselves. None: every node (no switch from a policy without fencing seen by this process).
        self.leased_since_switch: frozenset[str] | None = None

    def policy(self, name: str) -> Policy:
        b = self.backend
        policy = Policy.named(
            name, self.settings.lease_ttl_s, self.settings.tick_s, b.schedules_itself, b.moves_fenced
        )
        if self.liveness is not None and policy.detect_by_lease:
            policy = replace(policy, silent_s=self.liveness.silent_s)
        return policy

    def _take_over(self) -> bool:
        """With grants on: take the lead from a leader a majority of controllers has heard nothing from
        (Election.take_over), without waiting for its etcd lease to run out."""
        term = self.election.current
        if self.liveness is None or not term:
            return False
        agreed, said = self.liveness.leader_silent(term)
        if not agreed or not self.election.take_over(term):
            return False
        self.note(f"took the lead: {said}")
        return True

    def _hold(self, source: str) -> None:
        """A live move's wait between unbinding and binding (controller/liveness.py)."""
        s = self.settings
        hold(self.store, s.deployment, self.liveness, source, s.lease_ttl_s)

    def silence(self) -> dict[str, float]:
        """host -> seconds since its last grant round reached this controller ({} with grants off)."""
        if self.liveness is None:
            return {}
        return {h: self.liveness.silent_for(h) for h in self.settings.network_nodes}

    def next_silence_s(self) -> float:
        """Seconds until the first network node that is not yet silent would become so, or the leader
        suspected: the daemon wakes the tick then, not a tick later. Infinite with grants off."""
        if self.liveness is None:
            return float("inf")
        left = [self.liveness.silent_s - s for s in self.silence().values() if s < self.liveness.silent_s]
        left.append(self.liveness.next_suspicion_s(self.election.current))
        return max(0.0, min(left))

    def tick(self) -> str:
        started = time.monotonic()
        try:
            leading = self.election.step() or self._take_over()
            o = observe.read(self.store, self.settings.deployment)
        except StoreError as e:
            self.store_ok_since = None
            sentence = f"store unreachable, acting on nothing: {e}"
            self._record(sentence, [], leading=False)
            return sentence
        if self.store_ok_since is None:
            self.store_ok_since = self.mono()
        if self.guard is not None:
            self.guard.switched_off = o.control.get("failsafe") == "off"
        policy, now = self._take_in(o)
        if leading and policy.periodic and now - self.last_decided < policy.tick_s - 0.05:
            sentence = (
                f"policy {policy.name}: next check in {policy.tick_s - (now - self.last_decided):.1f} s"
            )
            self._record(sentence, [], leading, o, policy, quiet=True)
            return sentence
        self.last_decided = now
        snap = self._snapshot(o, leading, now)
        decision = decide(snap, policy)
        if not leading and self.election.lost:
            decision = replace(
                decision, sentence=f"{decision.sentence} (lost the lead: {self.election.lost})"
            )
            self.election.lost = ""  # said once
        outcomes, left_out = self._apply(decision.moves, o, policy)
        sentence = decision.sentence + (f": {act.summary(outcomes)}" if outcomes else "")
        sentence += f"; {left_out}" if left_out else ""
        if o.malformed:
            sentence += f"; ignored {len(o.malformed)} malformed value(s), first {o.malformed[0]}"
        if leading and not snap.paused and (policy.name == "hastack" or not policy.moves_routers):
            sentence += self._reconcile(now, follow_backend=not policy.moves_routers)
        if leading:
            sentence += self.drains.step(frozenset(observe.drained(o)))
        self.metrics.tick(time.monotonic() - started, leading, outcomes)
        self._record(sentence, outcomes, leading, o, policy)
        return sentence

    def _take_in(self, o: observe.Observed) -> tuple[Policy, float]:
        """Note what this read changes in the controller's memory: the policy and each node's health."""
        self.revision = o.revision
        policy = self.policy(observe.policy_name(o))
        now, mono = self.clock(), self.mono()
        if policy.name != self.policy_seen[0]:
            if self.policy_seen[0] and policy.name == "hastack":
                self.leased_since_switch = frozenset()
            self.policy_seen = (policy.name, mono)
        if self.leased_since_switch is not None:
            if mono - self.policy_seen[1] >= ANCHOR_OPEN_S:
                self.leased_since_switch = None  # every gate the old policy opened has run out
            else:
                self.leased_since_switch |= o.node_keys
        current = observe.nodes(
            o, self.settings.network_nodes, now, self.healthy_since, mono, silent=self.silence()
        )
        # The hysteresis guards against a node this process saw flap. At its first look it has seen none:
        # a node healthy then counts as stable (a restarted controller that wins the election would
        # otherwise wait 2 s more before it has a node to move routers to).
        first_look = not self.looked
        self.looked = True
        since = mono - policy.stable_s if first_look else mono
        self.healthy_since = observe.track_health(self.healthy_since, current, policy, since)
        return policy, now

    def settled_for_s(self) -> float:
        """How long this controller may act on what it reads, its election aside: since the policy changed
        (node agents need a lease TTL to take up a policy's rules), since its store came back after a
        failure (or it first read it), and since its last failsafe promise."""
        mono = self.mono()
        back = mono - self.store_ok_since if self.store_ok_since is not None else 0.0
        promised = self.guard.since_promise_s() if self.guard else float("inf")
        return min(mono - self.policy_seen[1], back, promised)

    def _snapshot(self, o: observe.Observed, leading: bool, now: float) -> Snapshot:
        return observe.snapshot(
            o,
            self.settings.network_nodes,
            now,
            self.healthy_since,
            leading,
            self.election.leader_for_s(),
            tuple(r for r in self._routers(o.bindings) if r not in self.in_flight),
            self.mono(),
            self.leased_since_switch,
            self.settled_for_s(),
            self.silence(),
        )

    def _routers(self, bindings: Mapping[str, str]) -> tuple[str, ...]:
        """All routers the backend defines, as read off the tick's thread (controller/definitions.py). One
        a live move has unbound on purpose counts as bound: it is no reason to read them again."""
        return self.definitions.step({*bindings, *self.in_flight})

    def _apply(
        self, moves: tuple[Move, ...], o: observe.Observed, policy: Policy
    ) -> tuple[list[act.Outcome], str]:
        """Carry out the moves; what they did, and (if any were left out) why."""
        sources = {m.source for m in moves if m.source}
        conditions, left_out = away(
            sources, o.node_keys, self.settings.deployment, self.liveness, policy.silent_s
        )
        moves = tuple(m for m in moves if m.source not in left_out)
        outcomes = act.apply(
            self.backend,
            moves,
            [self.election.fence()],
            conditions,
            self._hold,
            policy.concurrency,
        )
        return outcomes, "; ".join(left_out.values())

    def _reconcile(self, now: float, follow_backend: bool) -> str:
        """Every RECONCILE_S, in a thread of its own (Neutron takes seconds; the tick must go on renewing
        the leader's lease): make the backend follow the record of bindings (or, `follow_backend`, the
        record follow the backend), fenced like a move. What the last run changed is said by the next
        tick."""
        said, self.reconcile_said = self.reconcile_said, ""
        running = self.reconciler is not None and self.reconciler.is_alive()
        if not running and now - self.reconciled >= RECONCILE_S:
            self.reconciled = now
            fence = [self.election.fence()]
            self.reconciler = threading.Thread(
                target=self._run_reconcile, args=(fence, follow_backend), name="reconcile"
            )
            self.reconciler.start()
        return f"; {said}" if said else ""

    def _run_reconcile(self, fence: list[Compare], follow_backend: bool) -> None:
        try:
            self.reconcile_said = self.backend.reconcile(fence, follow_backend)
        except BackendError as e:
            self.reconcile_said = f"reconcile failed: {e}"

    def _record(
        self,
        sentence: str,
        outcomes: list[act.Outcome],
        leading: bool,
        o: observe.Observed | None = None,
        policy: Policy | None = None,
        quiet: bool = False,
    ) -> None:
        when = time.time()
        if not quiet and (outcomes or sentence != self.last.sentence):
            moves = [
                {
                    "router": x.move.router,
                    "from": x.move.source,
                    "to": x.move.target,
                    "ms": round(x.seconds * 1000, 1),
                    "error": x.error,
                }
                for x in outcomes
            ]
            self.history.append({"time": when, "sentence": sentence, "moves": moves})
        self.last = LastTick(sentence, when, leading, o, policy, quiet)

    def note(self, sentence: str) -> None:
        """Something outside the tick worth a line in the history (once, not once per repetition)."""
        if not self.history or self.history[-1]["sentence"] != sentence:
            self.history.append({"time": time.time(), "sentence": sentence, "moves": []})
            log.info(sentence)

    # ---- what operators ask for (through the HTTP API) ----

    def status(self) -> dict[str, Any]:
        o, policy = self.last.observed, self.last.policy
        body: dict[str, Any] = {
            "host": self.election.name,
            "leader": self.last.leader,
            "leader_for_s": round(self.election.leader_for_s(), 3),
            "last_tick": self.last.sentence,
        }
        if o is None or policy is None:
            return body
        current = observe.nodes(
            o,
            self.settings.network_nodes,
            self.clock(),
            self.healthy_since,
            self.mono(),
            self.leased_since_switch,
            self.silence(),
        )
        hosting: dict[str, list[str]] = {h: [] for h in self.settings.network_nodes}
        for router, host in sorted(o.bindings.items()):
            hosting.setdefault(host, []).append(router)
        body.update(
            policy=policy.name,
            paused=o.control.get("paused") == "true",
            drained=observe.drained(o),
            nodes=[
                {
                    "host": n.host,
                    "lease": n.has_lease,
                    "heartbeat_age_s": round(n.heartbeat_age_s, 2),
                    "admin_up": n.admin_up,
                    "failed": failure_reason(n, policy),
                    "routers": hosting[n.host],
                }
                for n in current
            ],
        )
        return body

    def set_control(self, name: str, value: str | None) -> None:
        key = keys.control_prefix(self.settings.deployment) + name
        op: Put | Delete = Delete(key) if value is None else Put(key, value)
        self.store.txn([], [op])

    def set_policy(self, name: str) -> None:
        if name not in POLICIES:
            raise ValueError(f"unknown policy {name!r}: one of {', '.join(POLICIES)}")
        self.set_control("policy", name)

    def drain(self, host: str, on: bool) -> None:
        if host not in self.settings.api_servers:
            raise ValueError(f"{host} serves no API behind HAProxy")
        self.set_control(f"drained/{host}", "true" if on else None)

    def rebalance(self) -> str:
        """An operator's request: even out the routers over the healthy nodes, with fenced live moves."""
        if not self.election.leader_since:
            raise ValueError("not the leader: send the request to the leader (GET /leader answers 200 there)")
        o = observe.read(self.store, self.settings.deployment)
        policy = self.policy(observe.policy_name(o))
        now = self.clock()
        snap = observe.snapshot(
            o,
            self.settings.network_nodes,
            now,
            self.healthy_since,
            True,
            self.election.leader_for_s(),
            (),
            self.mono(),
            settled_for_s=self.settled_for_s(),
        )
        decision = rebalance(snap, policy)
        self.in_flight.update(m.router for m in decision.moves)
        try:
            outcomes = act.apply(
                self.backend,
                decision.moves,
                [self.election.fence()],
                {},
                self._hold,
                policy.concurrency,
            )
        finally:
            self.in_flight.difference_update(m.router for m in decision.moves)
        sentence = decision.sentence + (f": {act.summary(outcomes)}" if outcomes else "")
        self.history.append({"time": time.time(), "sentence": f"operator: {sentence}", "moves": []})
        return sentence

    def move(self, router: str, target: str) -> str:
        """An operator's move, by the leader, fenced: the source's gate runs out before the target builds."""
        if not self.election.leader_since:
            raise ValueError("not the leader: send the move to the leader (GET /leader answers 200 there)")
        if target not in self.settings.network_nodes:
            raise ValueError(f"{target} is not a network node")
        hosted = self.backend.routers_by_agent()
        source = next((h for h, routers in hosted.items() if router in routers), None)
        if router not in self.backend.routers():
            raise ValueError(f"no router {router}")
        if source == target:
            return f"{router} is already on {target}: nothing to do"
        self.in_flight.add(router)
        try:
            m = Move(router, source or "", target)
            act.move_one(self.backend, m, [self.election.fence()], self._hold)
        finally:
            self.in_flight.discard(router)
        sentence = f"operator moved {router} from {source or 'nowhere'} to {target}"
        self.history.append({"time": time.time(), "sentence": sentence, "moves": []})
        return sentence
