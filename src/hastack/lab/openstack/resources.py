"""The lab's tenant workload as Neutron resources (profile `openstack`), driven from inside a lab host.

python -m hastack.lab.openstack.resources INVENTORY init     ensure networks, routers, VM ports, floating IPs
python -m hastack.lab.openstack.resources INVENTORY routers  each router's id and the host of its L3 agent
python -m hastack.lab.openstack.resources INVENTORY service-user  project `service`, user `neutron`, password

The addresses are the lab's network plan's (lab/topology.py): router i's gateway port, VM j's fixed and
floating IPs are the same as under the lab profile, so experiments ping the same floating IPs. Every step
looks the resource up by name first: `init` completes a half-made workload and changes nothing twice.
Answers are JSON on stdout; a failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from keystoneauth1 import exceptions as ksa_exceptions
from openstack import exceptions as sdk_exceptions
from openstack.connection import Connection

from hastack.backends import BackendError
from hastack.backends.neutron import NeutronBackend, connect
from hastack.lab.topology import NetworkPlan, network_plan
from hastack.model import Deployment, load_deployment
from hastack.render.neutron import EXTERNAL_NET
from hastack.store.connect import open_store

EXTERNAL = "hastack-external"
WORKERS = 6


def _find(items: Any, name: str) -> Any:
    return next((i for i in items if i.name == name), None)


def _external(conn: Connection, n: NetworkPlan) -> Any:
    net = conn.network.find_network(EXTERNAL) or conn.network.create_network(
        name=EXTERNAL,
        is_router_external=True,
        provider_network_type="flat",
        provider_physical_network=EXTERNAL_NET,
    )
    if conn.network.find_subnet(EXTERNAL) is None:
        cidr = n.external_cidr
        conn.network.create_subnet(
            name=EXTERNAL,
            network_id=net.id,
            ip_version=4,
            cidr=str(cidr),
            gateway_ip=None,
            is_dhcp_enabled=False,
            allocation_pools=[
                {"start": str(cidr.network_address + 10), "end": str(cidr.broadcast_address - 1)}
            ],
        )
    return net


def _router(conn: Connection, n: NetworkPlan, i: int, external: Any) -> Any:
    r = n.routers[i]
    name = f"net-{r.id}"
    net = conn.network.find_network(name) or conn.network.create_network(name=name)
    subnet = conn.network.find_subnet(name) or conn.network.create_subnet(
        name=name,
        network_id=net.id,
        ip_version=4,
        cidr=r.tenant_cidr,
        gateway_ip=r.gateway.split("/")[0],
    )
    router = conn.network.find_router(r.id)
    if router is None:
        gateway = {
            "network_id": external.id,
            "external_fixed_ips": [{"ip_address": r.external.split("/")[0]}],
        }
        router = conn.network.create_router(name=r.id, external_gateway_info=gateway)
    ports = conn.network.ports(device_id=router.id, network_id=net.id)
    if not any(True for _ in ports):
        conn.network.add_interface_to_router(router, subnet=subnet.id)
    return net, subnet


def init(dep: Deployment, conn: Connection) -> dict[str, Any]:
    n = network_plan(dep)
    external = _external(conn, n)
    nets = [_router(conn, n, i, external) for i in range(len(n.routers))]
    # Listed once, not looked up one by one: a lookup by name costs Neutron two requests.
    ports = {p.name: p for p in conn.network.ports(device_owner="compute:nova")}
    floating = {str(ip.port_id) for ip in conn.network.ips() if ip.port_id}

    def vm_port(j: int) -> tuple[str, dict[str, str]]:
        vm = n.vms[j]
        net, subnet = nets[j % len(n.routers)]
        port = ports.get(vm.name) or conn.network.create_port(
            name=vm.name,
            network_id=net.id,
            fixed_ips=[{"subnet_id": subnet.id, "ip_address": vm.address.split("/")[0]}],
            device_owner="compute:nova",
            device_id=f"hastack-lab-{vm.name}",
            binding_host_id=vm.host,
        )
        if port.id not in floating:
            conn.network.create_ip(
                floating_network_id=external.id, floating_ip_address=vm.floating, port_id=port.id
            )
        return vm.name, {"port": port.id, "mac": port.mac_address, "host": vm.host}

    # A few at a time: each port and floating IP costs Neutron a few hundred ms on this machine kind.
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="resources") as pool:
        vms = dict(pool.map(vm_port, range(len(n.vms))))
    return {"vms": vms, "routers": routers(dep, conn)}


def service_user(dep: Deployment, conn: Connection) -> dict[str, str]:
    """Project `service` and Neutron's user `neutron` in it, with the inventory's password (set again if
    the user exists: the inventory may have changed it)."""
    identity: Any = conn.identity  # typed as the v2 or v3 proxy; the lab's Keystone speaks v3
    project = identity.find_project("service", domain_id="default") or identity.create_project(
        name="service", domain_id="default"
    )
    password = dep.inventory.secrets.neutron_password
    user = identity.find_user("neutron", domain_id="default")
    if user is None:
        user = identity.create_user(
            name="neutron", domain_id="default", default_project_id=project.id, password=password
        )
    else:
        identity.update_user(user, password=password)
    return {"project": str(project.id), "user": str(user.id)}


def routers(dep: Deployment, conn: Connection) -> dict[str, dict[str, str | None]]:
    """Router name -> its id and the host of the L3 agent hosting it in Neutron (None: not scheduled)."""
    ids = {str(r.name): str(r.id) for r in conn.network.routers()}
    hosted = NeutronBackend(conn, open_store(dep), dep.name).routers_by_agent()
    host_of = {router: host for host, rs in hosted.items() for router in rs}
    return {name: {"id": rid, "host": host_of.get(rid)} for name, rid in sorted(ids.items())}


GATEWAY_ANSWERS = (502, 503, 504)


def gateway_status(e: Exception) -> int | None:
    """The HTTP status of a gateway's answer (HAProxy gave up on the servers, or a server could not reach
    the identity service), else None. The SDK raises its own exceptions for the service's answers, but
    keystoneauth's for the token it fetches first: both are looked at."""
    status = getattr(e, "status_code", None) or getattr(e, "http_status", None)
    return status if status in GATEWAY_ANSWERS else None


def _init_retried(dep: Deployment, conn: Connection, tries: int = 6, pause_s: float = 15.0) -> dict[str, Any]:
    """`init`, again after a gateway's answer (HAProxy gave up on a slow Neutron or Keystone call that may
    still complete, or Neutron could not reach Keystone in time while the lab is still starting on a loaded
    machine): every step finds what exists before it creates, so a later run picks up where Neutron got."""
    for attempt in range(1, tries + 1):
        try:
            return init(dep, conn)
        except (sdk_exceptions.HttpException, ksa_exceptions.HttpError) as e:
            status = gateway_status(e)
            if status is None or attempt == tries:
                raise
            print(
                f"openstack resources: {status}, init again in {pause_s:g} s ({attempt} of {tries})",
                file=sys.stderr,
            )
            time.sleep(pause_s)
    raise AssertionError("unreachable")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    dep = load_deployment(argv[0])
    conn = connect(dep)
    try:
        if argv[1] == "init":
            answer: Any = _init_retried(dep, conn)
        elif argv[1] == "routers":
            answer = routers(dep, conn)
        elif argv[1] == "service-user":
            answer = service_user(dep, conn)
        else:
            print(f"unknown command {argv[1]!r}", file=sys.stderr)
            return 2
    except (BackendError, sdk_exceptions.SDKException, ksa_exceptions.ClientException) as e:
        print(f"openstack resources: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
