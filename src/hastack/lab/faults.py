"""Failure injection in the lab, each reversible by `heal` and recorded in the state file.

- kill SERVICE:HOST     SIGKILL of every process of the service (its process group and its helpers)
- freeze SERVICE:HOST   SIGSTOP of the same processes, until heal
- freeze-host HOST      SIGSTOP of every process in the host's namespace
- cut HOST              the host's links down (management link, both ends)
- partition HOST:HOST   nftables drops between the two hosts, in both namespaces
- degrade HOST          netem delay and/or loss on the host's management link
Healing a kill restarts the service through the same idempotent bring-up as `lab up`.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass

from hastack.lab import procs, system
from hastack.lab.plan import LabPlan
from hastack.lab.state import LabState, ProcessRecord
from hastack.lab.system import LabError, in_netns, run

KINDS = ("kill", "freeze", "freeze-host", "cut", "partition", "degrade")
# service name on the command line -> the lab's process records that make it up
SERVICES: dict[str, tuple[str, ...]] = {
    "etcd": ("etcd",),
    "database": ("mariadb",),
    "rabbitmq": ("rabbitmq", "epmd"),
    "haproxy": ("haproxy",),
    "keepalived": ("keepalived", "keepalived-vrrp"),
    "keystone": ("keystone",),
    "l3-agent": ("l3-agent", "neutron-l3-agent"),  # the lab's, or Neutron's under profile openstack
    "dhcp-agent": ("neutron-dhcp-agent",),
    "hastack-agent": ("hastack-agent",),
    "hastack-controller": ("hastack-controller",),
}
FAULT_TABLE = "hastack_fault"


@dataclass(frozen=True)
class Fault:
    kind: str
    target: str
    delay_ms: int = 0
    loss_pct: float = 0.0

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "target": self.target,
            "delay_ms": str(self.delay_ms),
            "loss_pct": str(self.loss_pct),
        }


def parse(lab: LabPlan, kind: str, target: str, delay_ms: int = 0, loss_pct: float = 0.0) -> Fault:
    """Validate a fault against the lab (pure); LabError with a one-line reason if it makes no sense."""
    hosts = {h.name for h in lab.hosts}
    if kind not in KINDS:
        raise LabError(f"unknown fault kind {kind!r} (one of: {', '.join(KINDS)})")
    if kind in ("kill", "freeze"):
        service, _, host = target.partition(":")
        if service not in SERVICES or host not in hosts:
            raise LabError(
                f"{kind} wants SERVICE:HOST with SERVICE one of {', '.join(SERVICES)}; got {target!r}"
            )
        if host not in lab.deployment.hosts_of(service):
            raise LabError(f"{service} does not run on {host}")
    elif kind == "partition":
        a, _, b = target.partition(":")
        if a not in hosts or b not in hosts or a == b:
            raise LabError(f"partition wants two different hosts as HOST:HOST; got {target!r}")
    elif target not in hosts:
        raise LabError(f"{kind} wants a host; {target!r} is not one of {', '.join(sorted(hosts))}")
    if kind == "degrade" and not (delay_ms > 0 or loss_pct > 0):
        raise LabError("degrade needs --delay-ms and/or --loss-pct")
    return Fault(kind, target, delay_ms, loss_pct)


def service_records(state: LabState, service: str, host: str) -> list[ProcessRecord]:
    names = SERVICES[service]
    return [r for r in state.processes if r.host == host and r.name in names and procs.is_alive(r)]


def _signal(records: list[ProcessRecord], sig: signal.Signals) -> None:
    for rec in records:
        with contextlib.suppress(ProcessLookupError):
            if rec.adopted:
                os.kill(rec.pid, sig)
            else:
                # The lab started it as a session leader: its process group holds all its workers.
                os.killpg(rec.pid, sig)


def inject(lab: LabPlan, state: LabState, fault: Fault) -> str:
    """Apply `fault`, record it, and say what was done."""
    if fault.kind in ("kill", "freeze"):
        service, _, host = fault.target.partition(":")
        records = service_records(state, service, host)
        if not records:
            raise LabError(f"{service} is not running on {host}")
        _signal(records, signal.SIGKILL if fault.kind == "kill" else signal.SIGSTOP)
        if fault.kind == "kill":
            system.poll(f"{service} on {host} to die", lambda: not any(procs.is_alive(r) for r in records), 5)
        said = f"{fault.kind} {service} on {host}: pids {', '.join(str(r.pid) for r in records)}"
    elif fault.kind == "freeze-host":
        pids = system.netns_pids(lab.host(fault.target).netns)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        said = f"froze every process of {fault.target} ({len(pids)})"
    elif fault.kind == "cut":
        _links(lab, fault.target, "down")
        said = f"cut {fault.target} off the network"
    elif fault.kind == "partition":
        _partition(lab, fault.target, add=True)
        said = f"partitioned {fault.target.replace(':', ' from ')}"
    else:
        _netem(lab, fault, add=True)
        said = f"degraded {fault.target}: +{fault.delay_ms} ms, {fault.loss_pct}% loss"
    # A kill is recorded too: `status` shows it, and heal restarts what it killed.
    state.faults.append(fault.as_dict())
    state.save()
    return said


def undo(lab: LabPlan, state: LabState, fault: Fault) -> str:
    """Reverse one recorded fault (a kill is undone by the restart that follows every heal)."""
    if fault.kind == "freeze":
        service, _, host = fault.target.partition(":")
        _signal(service_records(state, service, host), signal.SIGCONT)
    elif fault.kind == "freeze-host":
        for pid in system.netns_pids(lab.host(fault.target).netns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    elif fault.kind == "cut":
        _links(lab, fault.target, "up")
    elif fault.kind == "partition":
        _partition(lab, fault.target, add=False)
    elif fault.kind == "degrade":
        _netem(lab, fault, add=False)
    return f"healed {fault.kind} {fault.target}"


def _links(lab: LabPlan, host: str, state: str) -> None:
    """Both ends of the host's management link, which also carries its VXLAN data plane."""
    h = lab.host(host)
    run(in_netns(h.netns, ["ip", "link", "set", h.interface, state]))
    run(in_netns(lab.switch_netns, ["ip", "link", "set", h.switch_port, state]))


def partition_rules(peer: str) -> str:
    """nftables that drop everything to and from `peer` (a table of its own, removed whole by heal)."""
    return (
        f"table inet {FAULT_TABLE} {{\n"
        f"  chain input {{\n    type filter hook input priority -200;\n    ip saddr {peer} drop\n  }}\n"
        f"  chain output {{\n    type filter hook output priority -200;\n    ip daddr {peer} drop\n  }}\n"
        "}\n"
    )


def _partition(lab: LabPlan, target: str, add: bool) -> None:
    a, _, b = target.partition(":")
    for me, other in ((a, b), (b, a)):
        ns = lab.host(me).netns
        if add:
            run(in_netns(ns, ["nft", "-f", "-"]), stdin=partition_rules(lab.host(other).address))
        else:
            run(in_netns(ns, ["nft", "delete", "table", "inet", FAULT_TABLE]), check=False)


DEGRADE_TABLE = "hastack_degrade"


def loss_rules(loss_pct: float) -> str:
    """nftables that drop `loss_pct` percent of the packets a host sends, at random."""
    return (
        f"table inet {DEGRADE_TABLE} {{\n  chain output {{\n    type filter hook output priority -200;\n"
        f"    numgen random mod 10000 < {round(loss_pct * 100)} drop\n  }}\n}}\n"
    )


def _netem(lab: LabPlan, fault: Fault, add: bool) -> None:
    """netem when the kernel has it; else loss through nftables, and delay refused with the reason."""
    h = lab.host(fault.target)
    if not add:
        run(in_netns(h.netns, ["tc", "qdisc", "del", "dev", h.interface, "root"]), check=False)
        run(in_netns(h.netns, ["nft", "delete", "table", "inet", DEGRADE_TABLE]), check=False)
        return
    args = ["tc", "qdisc", "replace", "dev", h.interface, "root", "netem"]
    if fault.delay_ms:
        args += ["delay", f"{fault.delay_ms}ms"]
    if fault.loss_pct:
        args += ["loss", f"{fault.loss_pct}%"]
    result = run(in_netns(h.netns, args), check=False)
    if result.returncode == 0:
        return
    if "unknown" not in result.stderr:
        raise LabError(f"degrade {fault.target}: {result.stderr.strip()}")
    if fault.delay_ms:
        raise LabError("this kernel has no netem qdisc: delay cannot be emulated here (loss can: --loss-pct)")
    run(in_netns(h.netns, ["nft", "-f", "-"]), stdin=loss_rules(fault.loss_pct))


def forget(state: LabState, fault: Fault) -> None:
    """Drop the record of `fault` (a fault is identified by its kind and target)."""
    for i, f in enumerate(state.faults):
        if (f["kind"], f["target"]) == (fault.kind, fault.target):
            del state.faults[i]
            break
    state.save()


def recorded(state: LabState, target: str | None) -> list[Fault]:
    faults = [
        Fault(f["kind"], f["target"], int(f.get("delay_ms", 0)), float(f.get("loss_pct", 0)))
        for f in state.faults
    ]
    return [f for f in faults if target is None or f.target == target or target in f.target.split(":")]
