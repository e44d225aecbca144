"""Every component hastack knows, with the facts the analysis and the renderers need.

The rows whose `table1` is set reproduce the paper's Table 1 (Brenner et al., DAIS 2014) to the letter:
severity and the database / message-queue / stateful marks are the paper's, even where a modern OpenStack
differs (the paper marks "API Services" as using neither DB nor MQ). Several deployable components can share
one Table 1 row ("API Services" covers nova-api, glance-api and cinder-api). Rows without `table1` are the
building blocks the paper's architecture adds (HAProxy, keepalived) and hastack's own (etcd, controller,
node agent); their severity is hastack's judgement and says so in `source`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Severity(StrEnum):
    """The paper's three classes, plus NONE for a failure that is fully masked."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.NONE: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}


class Role(StrEnum):
    """Host roles of the paper's architecture (section 5), plus the load balancer it co-locates."""

    PERSISTENCE = "persistence"
    CONTROLLER = "controller"
    NETWORK = "network"
    COMPUTE = "compute"
    LOADBALANCER = "loadbalancer"


class Mechanism(StrEnum):
    """How a component's failure is masked when it has enough healthy replicas."""

    ACTIVE_ACTIVE_LB = "active/active behind the load balancer"
    COMPETING_CONSUMERS = "active/active consumers on the message queue"
    GALERA = "Galera quorum"
    RABBITMQ_CLUSTER = "RabbitMQ cluster (quorum queues)"
    RAFT = "etcd raft quorum"
    VRRP = "VRRP virtual IP (keepalived)"
    MULTI_AGENT = "several agents per network"
    RESCHEDULE_FENCE = "reschedule + fence (hastack controller)"
    LEADER_ELECTION = "leader election on etcd"
    SWIFT_REPLICAS = "Swift ring replicas"
    NONE = "none"

    @property
    def is_quorum(self) -> bool:
        """Mechanisms that need a strict majority of their replicas alive."""
        return self in (Mechanism.GALERA, Mechanism.RABBITMQ_CLUSTER, Mechanism.RAFT)


class Scope(StrEnum):
    """CLUSTER: one logical service for the whole cloud. HOST: each instance serves only its own host."""

    CLUSTER = "cluster"
    HOST = "host"


@dataclass(frozen=True)
class Component:
    """One deployable component and the facts about it.

    `ports` are the TCP ports the component listens on, on its host's management address; `vip_port` is the
    port its load-balanced frontend takes on the virtual IP (None when it is not load-balanced).
    """

    name: str
    description: str
    table1: str | None
    severity: Severity
    uses_db: bool
    uses_mq: bool
    stateful: bool
    mechanism: Mechanism
    roles: tuple[Role, ...]
    scope: Scope = Scope.CLUSTER
    ports: tuple[int, ...] = ()
    vip_port: int | None = None
    health_path: str | None = None

    @property
    def source(self) -> str:
        return "paper Table 1" if self.table1 else "hastack"

    @property
    def is_load_balanced(self) -> bool:
        return self.vip_port is not None


def _worker(name: str, desc: str, row: str, sev: Severity, **marks: bool) -> Component:
    """A controller service that takes its work from the message queue (several replicas compete)."""
    return Component(
        name=name,
        description=desc,
        table1=row,
        severity=sev,
        uses_db=marks.get("db", False),
        uses_mq=marks.get("mq", False),
        stateful=marks.get("stateful", False),
        mechanism=Mechanism.COMPETING_CONSUMERS,
        roles=(Role.CONTROLLER,),
    )


def _api(name: str, desc: str, row: str, sev: Severity, port: int, path: str, **marks: bool) -> Component:
    """A stateless HTTP API on the controllers, active/active behind HAProxy on the VIP."""
    worker = _worker(name, desc, row, sev, **marks)
    return replace(
        worker, mechanism=Mechanism.ACTIVE_ACTIVE_LB, ports=(port,), vip_port=port, health_path=path
    )


_L, _M, _H = Severity.LOW, Severity.MEDIUM, Severity.HIGH
_NET, _CMP = (Role.NETWORK,), (Role.COMPUTE,)

# fmt: off
# One entry per row, as in the paper: name, description, Table 1 row, severity, DB, MQ, stateful, mechanism.
CATALOG: tuple[Component, ...] = (
    # --- Building blocks (paper section 3.1) -------------------------------------------------------------
    Component("database", "MariaDB Galera cluster", "Database", _H, True, False, True, Mechanism.GALERA,
              (Role.PERSISTENCE,), ports=(3306, 4444, 4567, 4568), vip_port=3306),
    Component("rabbitmq", "RabbitMQ message bus", "RabbitMQ", _H, False, True, True,
              Mechanism.RABBITMQ_CLUSTER, (Role.PERSISTENCE,), ports=(5672, 25672, 4369)),
    # --- OpenStack services (paper section 3.2) ----------------------------------------------------------
    _api("keystone", "Identity API", "Keystone", _H, 5000, "/v3", db=True),
    _api("nova-api", "Compute API", "API Services", _L, 8774, "/"),
    _api("glance-api", "Image API", "API Services", _L, 9292, "/versions"),
    _api("cinder-api", "Block storage API", "API Services", _L, 8776, "/"),
    _api("novnc", "noVNC console proxy", "noVNC", _L, 6080, "/"),
    _api("horizon", "Dashboard", "Horizon", _L, 8080, "/", db=True, stateful=True),
    _api("glance-registry", "Image metadata registry", "Glance-Registry", _M, 9191, "/", mq=True),
    _api("swift-proxy", "Object storage proxy", "Swift-Proxy", _M, 8888, "/healthcheck"),
    _api("neutron-server", "Networking API and scheduler", "Quantum-Server", _M, 9696, "/",
         db=True, mq=True, stateful=True),
    _worker("nova-scheduler", "Compute scheduler", "Nova-Scheduler", _M, mq=True),
    _worker("nova-cert", "Certificate service", "Nova-Cert", _L, mq=True),
    _worker("nova-consoleauth", "Console token service", "Nova-Consoleauth", _L, mq=True),
    _worker("nova-conductor", "Database proxy of the compute hosts", "Nova-Conductor", _M, db=True, mq=True),
    _worker("cinder-volume", "Block storage volume manager", "Cinder-Volume", _M),
    _worker("cinder-scheduler", "Block storage scheduler", "Cinder-Scheduler", _M, mq=True),
    _worker("cinder-backup", "Block storage backup", "Cinder-Backup", _M),
    Component("hypervisor", "Hypervisor (KVM)", "Hypervisor", _L, False, False, True, Mechanism.NONE,
              _CMP, scope=Scope.HOST),
    Component("nova-compute", "Compute agent", "Nova-Compute", _L, True, True, True, Mechanism.NONE,
              _CMP, scope=Scope.HOST),
    Component("swift-storage", "Object storage node", "Swift-Storage", _L, False, False, True,
              Mechanism.SWIFT_REPLICAS, (Role.PERSISTENCE, Role.COMPUTE), scope=Scope.HOST),
    Component("dhcp-agent", "Neutron DHCP agent", "DHCP-Agent", _M, True, True, False, Mechanism.MULTI_AGENT,
              _NET),
    Component("metadata-agent", "Neutron metadata agent", "Metadata-Agent", _M, True, True, False,
              Mechanism.MULTI_AGENT, _NET),
    Component("l3-agent", "Neutron L3 agent (virtual routers)", "L3-Agent", _M, True, True, True,
              Mechanism.RESCHEDULE_FENCE, _NET),
    Component("plugin-agent", "Neutron Open vSwitch agent", "Plugin-Agent", _L, True, True, True,
              Mechanism.NONE, (Role.NETWORK, Role.COMPUTE), scope=Scope.HOST),
    # --- The architecture's load balancer (paper section 5.1) and hastack's own ------------------------
    Component("haproxy", "HAProxy load balancer on the virtual IP", None, _H, False, False, False,
              Mechanism.VRRP, (Role.LOADBALANCER,), ports=(8404,)),
    Component("keepalived", "keepalived VRRP holder of the virtual IP", None, _H, False, False, False,
              Mechanism.VRRP, (Role.LOADBALANCER,)),
    Component("etcd", "etcd, hastack's coordination store", None, _M, False, False, True, Mechanism.RAFT,
              (Role.PERSISTENCE,), ports=(2379, 2380)),
    Component("hastack-controller", "hastack HA controller (leader-elected)", None, _M, False, False, False,
              Mechanism.LEADER_ELECTION, (Role.CONTROLLER,), ports=(7480, 7481)),
    Component("hastack-agent", "hastack node agent (lease, fence, cleanup)", None, _L, False, False, False,
              Mechanism.NONE, _NET, scope=Scope.HOST),
)
# fmt: on

_BY_NAME = {c.name: c for c in CATALOG}


def component(name: str) -> Component:
    """The catalog entry called `name`; KeyError if there is none."""
    return _BY_NAME[name]


def component_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)
