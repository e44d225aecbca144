"""What systemd does for a unit whose process died: start that one process again, on its host, with the
arguments bring-up gives it, and wait for nothing else. The fault campaign heals a kill with it, so that
healing one fault neither waits on nor ends another that is still active (`lab heal` brings the whole lab
back, and waits for every cluster to be whole)."""

from __future__ import annotations

from collections.abc import Callable

from hastack.lab import galera, hadaemons, keystone, loadbalancer, rabbitmq, realise, runtime
from hastack.lab.faults import SERVICES
from hastack.lab.openstack import neutron
from hastack.lab.plan import LabPlan
from hastack.lab.state import LabState
from hastack.lab.system import LabError

Starter = Callable[[LabPlan, LabState, str], None]


def _etcd(lab: LabPlan, state: LabState, host: str) -> None:
    d = next(d for d in lab.daemons if (d.name, d.host) == ("etcd", host))
    runtime.launch(lab, state, d.name, host, d.argv)


def _database(lab: LabPlan, state: LabState, host: str) -> None:
    """After a crash of every node nothing more than this is needed: the rendered `pc.recovery=TRUE` keeps
    each node's last primary component on disk (gvwstate.dat), and the nodes form it again once its
    members are back, without a bootstrap by hand."""
    galera.start(lab, state, host)


def _rabbitmq(lab: LabPlan, state: LabState, host: str) -> None:
    argv = rabbitmq.with_hostname(host, f"{rabbitmq.RABBITMQ_BIN}/rabbitmq-server")
    runtime.launch(lab, state, "rabbitmq", host, argv, rabbitmq.env(host))


def _keepalived(lab: LabPlan, state: LabState, host: str) -> None:
    loadbalancer.start_keepalived(lab, state, host, adopt_child=False)


def _l3_agent(lab: LabPlan, state: LabState, host: str) -> None:
    """The lab's own L3 agent, or neutron-l3-agent under profile openstack."""
    starter = neutron.start_l3_agent if realise.is_openstack(lab) else realise.start_l3_agent
    starter(lab, state, host)


def _hastack(name: str) -> Starter:
    def start(lab: LabPlan, state: LabState, host: str) -> None:
        hadaemons.ensure_one(lab, state, name, host)

    return start


STARTERS: dict[str, Starter] = {
    "etcd": _etcd,
    "database": _database,
    "rabbitmq": _rabbitmq,
    "haproxy": loadbalancer.start_haproxy,
    "keepalived": _keepalived,
    "keystone": keystone.start,
    "l3-agent": _l3_agent,
    "dhcp-agent": neutron.start_dhcp_agent,
    "hastack-agent": _hastack(hadaemons.AGENT),
    "hastack-controller": _hastack(hadaemons.CONTROLLER),
}


def restart(lab: LabPlan, state: LabState, service: str, host: str) -> str:
    """Start `service` on `host` again if none of its processes runs; what was done, in a sentence."""
    if any(runtime.running(state, name, host) for name in SERVICES[service]):
        return f"{service} runs on {host}"
    starter = STARTERS.get(service)
    if starter is None:
        raise LabError(f"{service} on {host} has no restart of its own here: `hastack lab heal` starts it")
    starter(lab, state, host)
    return f"restarted {service} on {host}"
