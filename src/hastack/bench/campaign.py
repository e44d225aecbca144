"""`hastack bench chaos`: a fault campaign run against the lab that is up.

The workloads run from start to end: one sweep pings every VM's floating IP every 100 ms, Keystone is read
through the VIP, rows are committed to Galera through the VIP and messages published with confirms to a
quorum queue (both recorded as acknowledged), and a sampler reads every router's gate on every network node
every 20 ms. The schedule's actions are injected and healed at their times; a heal ends that fault only,
as production sees one end (the link back, the process thawed, a killed process started again by its
unit: lab/restart.py). Then a full `lab heal` (timed: what no unit brings back alone), a settle, the queue
drained, the commits read back from every Galera node, and the invariants (`bench/chaosfigures.py`).
"""

from __future__ import annotations

import functools
import json
import platform
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from hastack.bench import chaos, chaosfigures, failover, lablink, probe
from hastack.bench.chaosfigures import Done
from hastack.bench.gates import GateSampler, dual_active, dual_forwarding
from hastack.lab import dataplane, faults, galera, hadaemons, leaks, restart, system, verify
from hastack.lab.plan import LabPlan
from hastack.lab.state import LabState, locked
from hastack.lab.system import LabError
from hastack.lab.topology import network_plan

BEFORE_S = 3.0  # the workloads run alone this long first: a baseline
SLACK_S = 600.0  # the probes' bound beyond the schedule: heals take time (a Galera node rejoins in ~10 s)
SWEEP_INTERVAL_S = 0.1

Progress = Callable[[int, int, str], None]  # (actions done, actions planned, what happened)


def services_running(state: LabState) -> list[tuple[str, str]]:
    """(service, host) for every service `lab fail` can name that the lab runs."""
    service_of = {record: service for service, records in faults.SERVICES.items() for record in records}
    return sorted({(service_of[r.name], r.host) for r in state.processes if r.name in service_of})


def menu(lab: LabPlan, inventory: str) -> tuple[chaos.Action, ...]:
    """Every action the campaign may draw on the lab that is up, operators' requests included."""
    ids, _namespace = failover.router_namespaces(lab, inventory)
    return chaos.menu(lab.deployment, services_running(LabState.load()), ids, goals(lab))


def goals(lab: LabPlan) -> chaos.Goals:
    """The failover goals of the lab's profile."""
    return chaos.GOALS[lab.deployment.inventory.lab.profile]


def execute(lab: LabPlan, plan: Sequence[chaos.Planned], t0: float, progress: Progress) -> list[Done]:
    """Inject and heal each action at its time after `t0` (wall clock); late when a heal ran long."""
    events = sorted([(x.start_s, 1, x) for x in plan] + [(x.end_s, 0, x) for x in plan], key=lambda e: e[:2])
    injected: dict[int, float] = {}
    answered: dict[int, str] = {}  # what the controllers said to an operator's request
    done: dict[int, Done] = {}
    for at, is_start, x in events:
        time.sleep(max(0.0, t0 + at - time.time()))
        a = x.action
        # An operator's request goes from a controller host no active fault touches.
        busy = frozenset().union(
            *(y.action.hosts for y in plan if y.index in injected and y.index not in done)
        )
        if is_start:
            try:
                injected[x.index], answered[x.index] = _inject(lab, a, busy)
            except LabError as e:  # e.g. the service was still down from an earlier kill
                _heal(lab, a, busy)
                done[x.index] = Done(x.index, a.label, a.kind, x.tolerated, a.goal_s, None, None, str(e))
                progress(len(done), len(plan), f"#{x.index} {a.label}: skipped ({e})")
            continue
        if x.index in injected:
            healed = "; ".join(filter(None, (answered.pop(x.index, ""), _heal(lab, a, busy))))
            done[x.index] = Done(
                x.index, a.label, a.kind, x.tolerated, a.goal_s, injected[x.index], time.time()
            )
            beyond = "" if x.tolerated else " (beyond what the analysis tolerates)"
            progress(len(done), len(plan), f"#{x.index} {a.label}{beyond}: held {x.hold_s:.1f} s; {healed}")
    return [done[i] for i in sorted(done)]


def _inject(lab: LabPlan, a: chaos.Action, busy: frozenset[str]) -> tuple[float, str]:
    """Inject the action's faults, or send its operator's request; the instant it began, and what the
    controllers answered to the request."""
    if not a.ctl:
        return lablink.inject(lab, *a.faults, loss_pct=chaos.LOSS_PCT), ""
    at = time.time()
    return at, _operator(lab, a.ctl, busy)


def _operator(lab: LabPlan, args: Sequence[str], busy: frozenset[str], tries: int = 1) -> str:
    """`hastack ctl ARGS` from a controller host outside `busy`; what the controllers answered. Tried
    `tries` times, 2 s apart (an undo must land: a policy left at an anchor would stop fencing)."""
    controllers = lab.deployment.hosts_of(hadaemons.CONTROLLER)
    hosts = [h for h in controllers if h not in busy] or list(controllers)
    attempt = 0
    while True:
        try:
            return str(hadaemons.ctl(lab, *args, on=hosts[attempt % len(hosts)]).get("done", ""))
        except LabError:
            attempt += 1
            if attempt >= tries:
                raise
            time.sleep(2)


def _heal(lab: LabPlan, a: chaos.Action, busy: frozenset[str] = frozenset()) -> str:
    """End the action's faults as production would see them end: the link back, the process thawed, a
    killed process started again by its unit (lab/restart.py), an operator's request undone (a drain,
    a policy). Nothing else is touched or waited for."""
    said = []
    if a.undo:
        try:
            said.append(_operator(lab, a.undo, busy, tries=8))
        except LabError as e:
            said.append(f"undo failed: {e}")  # the campaign's final heal undoes it again
    with locked():
        state = LabState.load()
        for fault in [f for f in faults.recorded(state, None) if (f.kind, f.target) in a.faults]:
            said.append(faults.undo(lab, state, fault))
            faults.forget(state, fault)
        for kind, target in a.faults:
            if kind == "kill":
                service, _, host = target.partition(":")
                try:
                    said.append(restart.restart(lab, state, service, host))
                except LabError as e:
                    said.append(str(e))  # the final heal of the campaign brings it back
    return "; ".join(said)


def _after(lab: LabPlan) -> list[str]:
    """What is wrong with the lab once the campaign is over: `lab verify`'s failed checks, and whatever the
    faults left behind (lab/leaks.py). [] when it is whole."""
    problems = [f"lab verify: {c.name}: {c.detail}" for c in verify.verify(lab) if not c.ok]
    with locked():
        return problems + leaks.leaks(LabState.load())


def run(
    lab: LabPlan, inventory: str, plan: Sequence[chaos.Planned], seed: int, progress: Progress
) -> dict[str, Any]:
    n = network_plan(lab.deployment)
    settle_s = goals(lab).settle_s  # after the last heal, before the verdict
    bound = chaos.duration_s(plan) + BEFORE_S + settle_s + SLACK_S
    workloads = Workloads(lab, bound)
    _ids, namespace = failover.router_namespaces(lab, inventory)
    nodes = lab.deployment.hosts_of("l3-agent")
    sampler = GateSampler({(h, r.id): namespace(h, r.id) for h in nodes for r in n.routers}, 0.02, bound)
    sampler.start()
    t0 = time.time() + BEFORE_S
    try:
        try:
            dones = execute(lab, plan, t0, progress)
        except BaseException:
            lablink.heal(lab)  # interrupted or failed: the lab is not left with faults in it
            raise
        # Whatever no unit brings back by itself (a Galera cluster that lost every node) is the operator's
        # `lab heal`: timed, and reported.
        started, final_heal = time.time(), "every service runs"
        try:
            lablink.heal(lab)
        except LabError as e:
            final_heal = f"failed: {e}"
        # Each undo on its own: one that fails must not keep the next (a policy back to hastack) from
        # being sent.
        for undo in sorted({x.action.undo for x in plan if x.action.undo}):
            try:
                _operator(lab, undo, frozenset(), tries=8)
            except LabError as e:
                final_heal += f"; `ctl {' '.join(undo)}` failed: {e}"
        final_heal_s = round(time.time() - started, 1)
        time.sleep(settle_s)
        after = _after(lab)
    finally:
        samples = sampler.stop()
        recorded = workloads.stop()
    verdict, rows = chaosfigures.invariants(
        dones,
        recorded["rounds"],
        len(n.vms),
        {"could": dual_active(samples), "did": dual_forwarding(samples)},
        recorded["lost_commits"],
        recorded["lost_messages"],
        recorded["keystone"],
        after,
    )
    return {
        "experiment": "fault campaign: random overlapping faults, invariants on the data plane",
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "seed": seed,
        "faults": len(plan),
        "started": t0,
        "duration_s": round(time.time() - t0, 1),
        "schedule": [x.as_dict() for x in plan],
        "done": rows,
        "invariants": verdict,
        "workloads": {k: v for k, v in recorded.items() if k not in ("rounds", "keystone")},
        "final_heal": {"seconds": final_heal_s, "said": final_heal},
        "vms": [vm.floating for vm in n.vms],
        "rounds": recorded["rounds"],
        "keystone": recorded["keystone"],  # every read's time and outcome: the verdict can be made again
    }


class Workloads:
    """The campaign's four workloads, started at once and stopped (then checked) at once."""

    def __init__(self, lab: LabPlan, seconds: float) -> None:
        self.p = lab
        dep = lab.deployment
        secrets = dep.inventory.secrets
        client = dep.hosts_of("keystone")[0]
        self.run_id, self.queue = f"chaos-{time.time_ns()}", f"chaos-{time.time_ns()}"
        self.mq_hosts = [str(lab.host(h).address) for h in dep.hosts_of("rabbitmq")]
        vms = ",".join(vm.floating for vm in network_plan(dep).vms)
        s = str(seconds)
        self.sweep = lablink.start_probe(
            dataplane.client_netns(),
            "sweep",
            "--targets",
            vms,
            "--seconds",
            s,
            "--interval",
            str(SWEEP_INTERVAL_S),
        )
        # A 2 s timeout: a read that hangs across a heal would otherwise count Keystone as failing for
        # the whole of a longer timeout after it, though a new read may already be answered.
        self.keystone = lablink.keystone_probe(lab, client, seconds, 0.2, timeout_s=2.0)
        args = ("--seconds", s, "--interval", "0.1")
        netns = lab.host(client).netns
        self.sql = lablink.start_probe(
            netns,
            "sql",
            "--host",
            lablink.vip(lab),
            "--run",
            self.run_id,
            *args,
            password=secrets.db_password,
        )
        count = str(int(seconds / 0.1))
        mq = ("--hosts", ",".join(self.mq_hosts), "--queue", self.queue)
        self.amqp = lablink.start_probe(
            netns, "amqp", *mq, "--count", count, *args, password=secrets.rabbitmq_password
        )
        self.netns, self.mq_password = netns, secrets.rabbitmq_password
        probes = {"sweep": self.sweep, "keystone": self.keystone, "sql": self.sql, "amqp": self.amqp}
        self.recorders = {name: Recorder(proc) for name, proc in probes.items()}

    def stop(self) -> dict[str, Any]:
        out = {name: recorder.stop() for name, recorder in self.recorders.items()}
        rounds = [r for r in out["sweep"] if "missing" in r]
        acknowledged = {s["seq"] for s in out["sql"] if s.get("ok")}
        confirmed = {s["seq"] for s in out["amqp"] if s.get("ok")}
        drained = probe.rows(self._drain())
        received = set(drained[-1].get("received", [])) if drained else set()
        lost = max(
            (len(acknowledged - rows) for rows in self._committed().values()), default=len(acknowledged)
        )
        keystone = out["keystone"]
        return {
            "rounds": rounds,
            "keystone": [{"t": s["t"], "ok": bool(s.get("ok"))} for s in keystone if "t" in s],
            "sweep_rounds": len(rounds),
            "keystone_requests": len(keystone),
            "keystone_failed": sum(1 for s in keystone if not s.get("ok")),
            "acknowledged_commits": len(acknowledged),
            "lost_commits": lost,
            "confirmed_messages": len(confirmed),
            "lost_messages": len(confirmed - received),
        }

    def _drain(self, tries: int = 6) -> str:
        """The drain probe's output; tried again while RabbitMQ is still coming back."""
        for _ in range(tries - 1):
            out, ok = self._drain_once()
            if ok:
                return out
            time.sleep(10)
        return self._drain_once()[0]

    def _drain_once(self) -> tuple[str, bool]:
        proc = lablink.start_probe(
            self.netns,
            "drain",
            "--hosts",
            ",".join(self.mq_hosts),
            "--queue",
            self.queue,
            "--seconds",
            "60",
            password=self.mq_password,
        )
        out, _err = proc.communicate(timeout=120)
        return out, proc.returncode == 0

    def _committed(self) -> dict[str, set[int]]:
        """seq of every row the SQL workload committed, as each Galera node holds them."""
        stored = {}
        query = f"SELECT seq FROM hastack.probe_writes WHERE run = {galera.literal(self.run_id)}"
        for host in self.p.deployment.hosts_of("database"):
            # A node still rejoining after the last heal answers within its join timeout.
            system.poll(f"galera on {host} to answer", functools.partial(self._answers, host), 180, 2)
            stored[host] = {int(x) for x in galera.sql(self.p, host, query, 30).split()}
        return stored

    def _answers(self, host: str) -> bool:
        return bool(galera.status(self.p, host))


class Recorder:
    """Reads a probe's output as it comes: a probe whose pipe nobody reads blocks once 64 KiB are
    waiting (the first campaigns measured only their first two minutes that way)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._read, args=(proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(proc.stderr, self.errors), daemon=True),
        ]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(stream: IO[str] | None, into: list[str]) -> None:
        for line in stream or ():
            into.append(line)

    def stop(self) -> list[dict[str, Any]]:
        """Stop the probe (SIGTERM; it is bounded anyway) and its samples, one JSON line each."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self.threads:
            t.join(timeout=10)
        return probe.rows("".join(self.lines))


def write(result: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "chaos.json"
    target.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return target


def load_schedule(path: Path) -> tuple[int, tuple[chaos.Planned, ...]]:
    """The seed and schedule of an earlier campaign's chaos.json; ValueError saying what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return int(data["seed"]), tuple(chaos.Planned.from_dict(x) for x in data["schedule"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a campaign's chaos.json ({e})") from e
