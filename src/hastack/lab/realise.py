"""Bringing a LabPlan up and down. Every step is idempotent, and every namespace, directory and process is
recorded in the state file the moment it exists, so `down` removes exactly what `up` made."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hastack import pki
from hastack.lab import (
    dataplane,
    faults,
    galera,
    hadaemons,
    keystone,
    l3agent,
    loadbalancer,
    procs,
    rabbitmq,
    runtime,
    system,
)
from hastack.lab.openstack import hostmounts, neutron, vms
from hastack.lab.plan import LAB_INVENTORY, LAB_ROOT, LabPlan, etcdctl
from hastack.lab.state import LabState, ProcessRecord
from hastack.lab.system import LabError, in_netns, run
from hastack.lab.topology import NetworkPlan, network_plan
from hastack.model.endpoints import etcd_client_url
from hastack.model.load import dump_inventory
from hastack.pki import Layout
from hastack.render import render_all

Progress = system.Progress


def up(lab: LabPlan, state: LabState, inventory: str, progress: Progress) -> None:
    system.check_machine()
    clashes = system.overlapping_routes(lab.ranges)
    if clashes:
        mine, route = clashes[0]
        raise LabError(
            f"lab range {mine} overlaps the root namespace's route {route}: choose other ranges "
            "in the inventory (networks, lab.external_cidr, lab.tenant_cidr)"
        )
    if state.deployment and state.deployment != lab.deployment.name:
        raise LabError(f"a lab of deployment {state.deployment!r} is up: run `hastack lab down` first")
    if state.inventory and state.inventory != inventory:
        # The daemons read the inventory the lab was made from (another profile is another file).
        raise LabError(
            f"the lab is up from {state.inventory}: run `hastack lab up` with that inventory, "
            "or `hastack lab down` first"
        )
    state.deployment, state.inventory = lab.deployment.name, inventory
    state.save()
    _network(lab, state, progress)
    n = network_plan(lab.deployment)
    if n.data_hosts:
        dataplane.ensure_overlay(lab, n, state, progress, trunk=is_openstack(lab))
    _configs(lab, state, progress)
    ensure_services(lab, state, progress)


def ensure_services(lab: LabPlan, state: LabState, progress: Progress) -> None:
    """Start every daemon that is not running, in dependency order; what runs is left alone."""
    _daemons(lab, state, progress)
    if lab.deployment.is_deployed("etcd"):
        system.poll("etcd members to be healthy", lambda: is_etcd_healthy(lab), timeout=30, interval=0.2)
    galera.ensure(lab, state, progress)
    rabbitmq.ensure(lab, state, progress)
    loadbalancer.ensure(lab, state, progress)
    keystone.ensure(lab, state, progress)
    if is_openstack(lab):
        neutron.ensure_server(lab, state, progress)
        neutron.ensure_agents(lab, state, progress)
        _openstack_plane(lab, state, progress)
    else:
        _network_plane(lab, state, progress)
    _supervisor(state, progress)


def is_openstack(lab: LabPlan) -> bool:
    """Profile `openstack`: Neutron's server and agents instead of the lab's own network service."""
    return lab.deployment.inventory.lab.profile == "openstack"


def routerctl(lab: LabPlan, state: LabState, *args: str) -> Any:
    """Run the lab network service helper inside the first etcd host; its JSON answer."""
    host = lab.host(lab.deployment.hosts_of("etcd")[0])
    argv = [sys.executable, "-m", "hastack.lab.routerctl", LAB_INVENTORY, *args]
    return json.loads(run(in_netns(host.netns, argv), timeout=60).stdout)


def _network_plane(lab: LabPlan, state: LabState, progress: Progress) -> None:
    n = network_plan(lab.deployment)
    agents = lab.deployment.hosts_of("l3-agent")
    if not n.routers or not agents:
        return
    for host in agents:
        if runtime.running(state, "l3-agent", host) is None:
            progress(f"lab L3 agent: starting on {host}")
        start_l3_agent(lab, state, host)
    for said in hadaemons.ensure_agents(lab, state):
        progress(f"node agent: {said}")
    progress(f"network service: {len(n.routers)} routers scheduled over {', '.join(agents)}")
    routerctl(lab, state, "init")
    for said in hadaemons.ensure_controllers(lab, state):
        progress(f"HA controller: {said}")
    dataplane.ensure_vms(lab, n, state, progress)
    _wait_reachable(n, progress)


def start_l3_agent(lab: LabPlan, state: LabState, host: str) -> None:
    """The lab's own L3 agent on `host` (unless it runs); waits for nothing."""
    argv = (str(Path(sys.executable).parent / "hastack"), "lab", "l3-agent", LAB_INVENTORY, host)
    # It creates router namespaces: they must be visible outside its own process.
    hadaemons.record_l3_pid(runtime.launch(lab, state, "l3-agent", host, argv, shared_mounts=True))


def _openstack_plane(lab: LabPlan, state: LabState, progress: Progress) -> None:
    """Profile openstack: the lab's networks, routers and VMs as Neutron resources, VMs by DHCP."""
    n = network_plan(lab.deployment)
    progress(f"neutron: {len(n.routers)} routers, their networks, {len(n.vms)} ports and floating IPs")
    answer = vms.workload(lab, state)
    vms.ensure_vms(lab, n, state, answer["vms"], progress)
    for said in hadaemons.ensure_agents(lab, state) + hadaemons.ensure_controllers(lab, state):
        progress(f"hastack: {said}")
    # Neutron builds routers in seconds each and Open vSwitch wires ports by RPC: give it longer.
    _wait_reachable(n, progress, timeout_s=300)


def _wait_reachable(n: NetworkPlan, progress: Progress, timeout_s: float = 60) -> None:
    progress(f"waiting for {len(n.vms)} VMs to answer on their floating IPs")
    system.poll(
        "every VM to answer on its floating IP from the client",
        lambda: all(dataplane.reachability(n, 0.5).values()),
        timeout=timeout_s,
        interval=0.5,
    )


def _supervisor(state: LabState, progress: Progress) -> None:
    """Started last, so that `down` stops it first: nothing is restarted while the lab is taken apart."""
    if runtime.running(state, "supervisor", "lab") is None:
        progress("starting the lab's supervisor (restarts haproxy and keepalived, as systemd would)")
        argv = (sys.executable, "-m", "hastack.lab.supervisor", LAB_INVENTORY)
        rec = procs.spawn("supervisor", "lab", None, argv, Path(LAB_ROOT) / "supervisor.out")
        runtime.adopt(state, rec)


def heal(lab: LabPlan, state: LabState, target: str | None, progress: Progress) -> list[str]:
    """Undo the recorded faults (all, or those touching `target`), then restart whatever is dead."""
    said = []
    for fault in faults.recorded(state, target):
        said.append(faults.undo(lab, state, fault))
        faults.forget(state, fault)
        progress(said[-1])
    ensure_services(lab, state, progress)
    return said


def _network(lab: LabPlan, state: LabState, progress: Progress) -> None:
    progress(f"management switch: namespace {lab.switch_netns}, bridge {lab.bridge}")
    state.record_namespace(lab.switch_netns)
    system.ensure_netns(lab.switch_netns)
    system.ensure_bridge(lab.switch_netns, lab.bridge)
    for h in lab.hosts:
        progress(f"host {h.name}: namespace {h.netns}, {h.interface} {h.address}/{h.prefixlen}")
        state.record_namespace(h.netns)
        system.ensure_netns(h.netns)
        system.ensure_veth(h.netns, h.interface, lab.switch_netns, h.switch_port, lab.bridge)
        system.ensure_address(h.netns, h.interface, f"{h.address}/{h.prefixlen}")


def _configs(lab: LabPlan, state: LabState, progress: Progress) -> None:
    progress(f"rendering configuration into {LAB_ROOT}")
    if LAB_ROOT not in state.dirs:
        state.dirs.append(LAB_ROOT)
        state.save()
    root = Path(LAB_ROOT)
    for h in lab.hosts:
        for sub in ("etc", "state", "run", "log"):
            (root / h.name / sub).mkdir(parents=True, exist_ok=True)
    _certificates(lab, progress)
    # Secrets inside: readable by root only.
    system.write_with_mode(Path(LAB_INVENTORY), dump_inventory(lab.deployment.inventory), 0o600)
    for f in render_all(lab.deployment):
        target = root / f.host / "etc" / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        system.write_with_mode(target, f.text, f.mode)


def _certificates(lab: LabPlan, progress: Progress) -> None:
    """The deployment's CA and certificates, as `hastack pki` makes them, under the lab's own directory."""
    dep = lab.deployment
    if not dep.inventory.tls.etcd:
        return
    layout = Layout.of(dep)
    try:
        made = pki.ensure(dep.name, [(h.name, str(h.address)) for h in dep.hosts], layout)
    except pki.PkiError as e:
        raise LabError(f"certificates: {e}") from e
    progress(f"certificates: {len(made)} files made in {layout.dir}" if made else "certificates: in place")


def _daemons(lab: LabPlan, state: LabState, progress: Progress) -> None:
    for d in lab.daemons:
        if runtime.running(state, d.name, d.host) is None:
            progress(f"starting {d.name} on {d.host}")
            runtime.launch(lab, state, d.name, d.host, d.argv)


def _stop_all(state: LabState, group: list[ProcessRecord], progress: Progress) -> None:
    def stop(rec: ProcessRecord) -> ProcessRecord:
        procs.stop(rec)
        return rec

    for rec in group:
        progress(f"stopping {rec.name} on {rec.host} (pid {rec.pid})")
    with ThreadPoolExecutor(max_workers=32, thread_name_prefix="stop") as pool:
        for rec in pool.map(stop, group):
            state.processes.remove(rec)
            state.save()


def _etcd_endpoints_json(lab: LabPlan, what: str) -> subprocess.CompletedProcess[str]:
    """`etcdctl endpoint WHAT -w json` over every member, run from the first etcd host (not checked)."""
    first = lab.host(lab.deployment.hosts_of("etcd")[0])
    argv = etcdctl(lab, "endpoint", what, "-w", "json")
    return run(in_netns(first.netns, argv), check=False, timeout=10)


def is_etcd_healthy(lab: LabPlan) -> bool:
    out = _etcd_endpoints_json(lab, "health")
    try:
        return all(e["health"] for e in json.loads(out.stdout)) if out.returncode == 0 else False
    except (ValueError, KeyError, TypeError):
        return False


def etcd_leader(lab: LabPlan) -> str:
    """The etcd host whose member leads now (`etcdctl endpoint status`); LabError if none answers so."""
    hosts = lab.deployment.hosts_of("etcd")
    out = _etcd_endpoints_json(lab, "status")
    try:
        members = json.loads(out.stdout)
        urls = {str(m["Endpoint"]): m["Status"] for m in members}
        leader = next(s["leader"] for s in urls.values())
        for host in hosts:
            status = urls.get(etcd_client_url(lab.deployment, host))
            if status is not None and status["header"]["member_id"] == leader:
                return host
    except (ValueError, KeyError, TypeError, StopIteration):
        pass
    raise LabError(f"no etcd member says which one leads: {out.stderr.strip() or out.stdout.strip()}")


def down(state: LabState, progress: Progress) -> None:
    """Remove what the state file records, in reverse; safe to run twice and after a failed `up`."""
    system.check_machine()
    # The supervisor first (it would restart the others), then every daemon at once: each is stopped by
    # its own PID, and Neutron's agents wait out the SIGTERM timeout. The helpers the daemons started
    # (epmd) go after them, since they use them.
    spawned = [r for r in reversed(state.processes) if not r.adopted]
    supervisor = [r for r in spawned if r.name == "supervisor"]
    others = [r for r in spawned if r.name != "supervisor"]
    for group in (supervisor, others, [r for r in state.processes if r.adopted]):
        _stop_all(state, group, progress)
    for host in list(state.mounts):
        hostmounts.remove(host, progress)
        state.mounts.remove(host)
        state.save()
    # Router namespaces are made by the L3 agents, which record each in their host's l3-routers.json.
    for record in sorted(Path(LAB_ROOT).glob("*/l3-routers.json")):
        for ns in l3agent.recorded_namespaces(record.parent.name):
            progress(f"removing router namespace {ns}")
            system.delete_netns(ns)
    for ns in reversed(list(state.namespaces)):
        for pid in system.netns_pids(ns):
            # Only descendants of the lab's daemons can live in a namespace the lab made.
            progress(f"stopping leftover process {pid} ({procs.comm(pid)}) in {ns}")
            procs.kill_leftover(pid)
        progress(f"removing namespace {ns}")
        system.delete_netns(ns)
        state.namespaces.remove(ns)
        state.save()
    for d in reversed(list(state.dirs)):
        progress(f"removing {d}")
        shutil.rmtree(d, ignore_errors=True)
        state.dirs.remove(d)
        state.save()
    state.deployment = state.inventory = ""
    state.save()


def status(lab: LabPlan, state: LabState) -> dict[str, Any]:
    present = system.netns_list()
    return {
        "deployment": state.deployment,
        "hosts": [
            {"host": h.name, "netns": h.netns, "address": h.address, "up": h.netns in present}
            for h in lab.hosts
        ],
        "processes": [
            {"name": r.name, "host": r.host, "pid": r.pid, "alive": procs.is_alive(r)}
            for r in state.processes
        ],
        "etcd_healthy": is_etcd_healthy(lab) if lab.switch_netns in present else False,
        "faults": list(state.faults),
        "memory_mb": round(memory_bytes(lab, state) / 2**20),
        **_network_status(lab, state),
    }


def _network_status(lab: LabPlan, state: LabState) -> dict[str, Any]:
    n = network_plan(lab.deployment)
    if not n.routers or dataplane.client_netns() not in state.namespaces:
        return {}
    try:
        shown = routerctl(lab, state, "show")
    except LabError as e:
        shown = {"error": str(e)}
    out = {"network_service": shown, "vm_reachable": dataplane.reachability(n)}
    if lab.deployment.hosts_of(hadaemons.CONTROLLER):
        try:
            out["controller"] = hadaemons.ctl(lab, "status")
        except LabError as e:
            out["controller"] = {"error": str(e)}
    return out


def memory_bytes(lab: LabPlan, state: LabState) -> int:
    """Proportional set size of every process in the lab's namespaces, plus the lab's own supervisor.

    PSS splits shared pages among the processes that share them, so the sum does not count a library
    or a forked worker's unchanged memory twice."""
    pids = {pid for ns in state.namespaces for pid in system.netns_pids(ns)}
    pids |= {r.pid for r in state.processes if procs.is_alive(r)}
    return sum(procs.pss_bytes(pid) for pid in pids)
