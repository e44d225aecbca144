"""The paper's Figure 4a: Keystone through the VIP while a replica fails.

A client on a compute host lists users (`GET /v3/users`, token auth) through the VIP every 50 ms; after a
few seconds one Keystone replica is killed (or frozen, or its controller host cut), later healed. Reported
from the samples: failed requests, p50/p99 latency before the fault, the worst latency after it, and the
time until it is steady again: when the last request after the fault that failed or took longer than
2 x p99-before + 100 ms (the goal's bound) ended; and when every HAProxy had marked the replica down
(their runtime APIs polled every 50 ms: "frozen replica detected <= 1 s").
"""

from __future__ import annotations

import json
import platform
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hastack.backends import BackendError
from hastack.backends.haproxy import HAProxyRuntime
from hastack.bench import lablink
from hastack.lab.plan import LabPlan
from hastack.model.endpoints import host_dirs

FAULTS = {
    "replica-kill": ("kill", "keystone:{host}"),
    "replica-freeze": ("freeze", "keystone:{host}"),
    "host-cut": ("cut", "{host}"),
}
BEFORE_S, FAULT_S, AFTER_S, INTERVAL_S = 3.0, 6.0, 3.0, 0.05


@dataclass
class ApiTrial:
    fault: str
    host: str
    requests: int
    failed: int
    p50_before_ms: float
    p99_before_ms: float
    max_after_ms: float
    steady_after_s: float  # after the fault: when the last failed or slow request ended (0: none)
    samples: list[dict[str, Any]] = field(default_factory=list)  # t relative to the fault
    detected_s: float | None = None  # when every HAProxy had the replica down (None: not all did)
    checks: list[dict[str, Any]] = field(default_factory=list)  # HAProxy's view: t, lb, status

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def detected(checks: Sequence[dict[str, Any]]) -> float | None:
    """When every load balancer had first seen the replica down after the fault (t relative to it);
    None if one never did. Pure."""
    firsts: dict[str, float | None] = {c["lb"]: None for c in checks}
    for c in sorted(checks, key=lambda c: c["t"]):
        if c["t"] >= 0 and c["status"].startswith("DOWN") and firsts[c["lb"]] is None:
            firsts[c["lb"]] = c["t"]
    seen = list(firsts.values())
    if not seen or any(t is None for t in seen):
        return None
    return round(max(t for t in seen if t is not None), 3)


def summarise(
    fault: str, host: str, samples: Sequence[dict[str, Any]], checks: Sequence[dict[str, Any]] = ()
) -> ApiTrial:
    """The trial's figures from its samples (t relative to the fault; ms latency; ok) and from the load
    balancers' view of the replica. Pure."""
    before = [s["ms"] for s in samples if s["t"] < 0 and s["ok"]]
    after = [s for s in samples if s["t"] >= 0]
    p99 = percentile(before, 99) if before else 0.0
    limit = 2 * p99 + 100
    # Steady again once the last request that failed or took longer than the goal allows had ended.
    bad = [s["t"] + s["ms"] / 1000 for s in after if not s["ok"] or s["ms"] > limit]
    steady = round(max(bad), 3) if bad else 0.0
    return ApiTrial(
        fault,
        host,
        len(samples),
        sum(not s["ok"] for s in samples),
        round(statistics.median(before), 2) if before else 0.0,
        round(p99, 2),
        round(max((s["ms"] for s in after), default=0.0), 2),
        steady,
        list(samples),
        detected(checks),
        list(checks),
    )


class CheckSampler:
    """Polls every HAProxy's runtime API (its Unix socket) for one server's status, every 50 ms, in a
    thread: (time, load balancer, status) each time a status changes."""

    def __init__(self, lab: LabPlan, backend: str, server: str) -> None:
        dep = lab.deployment
        self.runtimes = {
            lb: HAProxyRuntime(f"{host_dirs(dep, lb).run}/haproxy.sock", None, timeout_s=0.5)
            for lb in dep.hosts_of("haproxy")
        }
        self.backend, self.server = backend, server
        self.seen: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _status(self, rt: HAProxyRuntime) -> str:
        try:
            rows = rt.stats()
        except BackendError:
            return "unreachable"
        match = [r for r in rows if (r["pxname"], r["svname"]) == (self.backend, self.server)]
        return match[0]["status"] if match else "absent"

    def _run(self) -> None:
        last: dict[str, str] = {}
        while not self._stop.wait(0.05):
            for lb, rt in self.runtimes.items():
                status, now = self._status(rt), time.time()
                if last.get(lb) != status:
                    last[lb] = status
                    self.seen.append({"t": now, "lb": lb, "status": status})

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join()
        return self.seen


def run_trial(lab: LabPlan, fault: str, progress: Callable[[str], None]) -> ApiTrial:
    kind, target = FAULTS[fault]
    host = lab.deployment.hosts_of("keystone")[0]
    client = lab.deployment.hosts_of("nova-compute")[0]
    url = lablink.keystone_url(lab)
    seconds = BEFORE_S + FAULT_S + AFTER_S
    progress(f"api / {fault}: GET {url}/users every {INTERVAL_S * 1000:.0f} ms from {client}")
    probe = lablink.keystone_probe(lab, client, seconds, INTERVAL_S)
    sampler = CheckSampler(lab, "keystone", host)
    sampler.start()
    time.sleep(BEFORE_S)
    injected = lablink.inject(lab, (kind, target.format(host=host)))
    time.sleep(FAULT_S)
    lablink.heal(lab, host)
    out, _err = probe.communicate(timeout=seconds + 60)
    checks = [dict(c, t=round(c["t"] - injected, 3)) for c in sampler.stop()]
    samples = [json.loads(line) for line in out.splitlines()]
    rel = [{"t": round(s["t"] - injected, 3), "ok": s["ok"], "ms": s["ms"]} for s in samples]
    return summarise(fault, host, rel, checks)


def run(
    lab: LabPlan,
    fault_names: Sequence[str],
    repeat: int,
    out: Any,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Every fault `repeat` times; writes OUT/api.json and OUT/api.png."""
    started = time.time()
    trials = []
    for fault in fault_names:
        for i in range(repeat):
            t = run_trial(lab, fault, progress)
            trials.append(t)
            progress(
                f"  trial {i + 1}: {t.failed} failed of {t.requests}; p99 before {t.p99_before_ms} ms, "
                f"max after {t.max_after_ms} ms, steady after {t.steady_after_s} s, "
                f"down on every HAProxy after {t.detected_s} s"
            )
    result = {
        "experiment": "Keystone GET /v3/users via the VIP every 50 ms while a replica fails"
        " (the paper's Fig. 4a)",
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "started": started,
        "seconds": round(time.time() - started, 1),
        "summary": summary(trials),
        "trials": [t.as_dict() for t in trials],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "api.json").write_text(json.dumps(result, indent=2))
    plot(trials, out / "api.png")
    return result


def summary(trials: Sequence[ApiTrial]) -> list[dict[str, Any]]:
    """Per fault: medians and worst cases over the trials. Pure."""
    rows = []
    for fault in sorted({t.fault for t in trials}):
        mine = [t for t in trials if t.fault == fault]
        rows.append(
            {
                "fault": fault,
                "trials": len(mine),
                "failed_total": sum(t.failed for t in mine),
                "p99_before_ms": statistics.median(t.p99_before_ms for t in mine),
                "max_after_ms": max(t.max_after_ms for t in mine),
                "median_steady_after_s": statistics.median(t.steady_after_s for t in mine),
                "worst_steady_after_s": max(t.steady_after_s for t in mine),
                "worst_detected_s": _worst(t.detected_s for t in mine),
            }
        )
    return rows


def _worst(values: Any) -> float | None:
    """The largest, or None if any is None (a load balancer that never saw the fault is the worst)."""
    seen = list(values)
    return None if not seen or None in seen else max(seen)


def plot(trials: Sequence[ApiTrial], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    faults_seen = sorted({t.fault for t in trials})
    fig, axes = plt.subplots(len(faults_seen), 1, figsize=(10, 2.6 * len(faults_seen)), squeeze=False)
    for ax, fault in zip(axes[:, 0], faults_seen, strict=True):
        t = next(x for x in trials if x.fault == fault)
        ok = [s for s in t.samples if s["ok"]]
        bad = [s for s in t.samples if not s["ok"]]
        ax.plot([s["t"] for s in ok], [s["ms"] for s in ok], ".", markersize=3, label="answered")
        if bad:
            ax.plot([s["t"] for s in bad], [s["ms"] for s in bad], "x", color="red", label="failed")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.axvline(FAULT_S, color="grey", linestyle=":", linewidth=0.8)
        if t.detected_s is not None:
            ax.axvline(
                t.detected_s, color="tab:purple", linestyle="--", linewidth=0.8, label="down on every LB"
            )
        ax.set_yscale("log")
        ax.set_ylabel("response time (ms)")
        ax.set_title(
            f"{fault} on {t.host} at 0 s, healed at {FAULT_S:.0f} s: {t.failed} failed of {t.requests}",
            fontsize=9,
        )
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds after the fault")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
