"""The lab network service, driven from inside a lab host (the root namespace cannot reach etcd).

python -m hastack.lab.netservice INVENTORY init            define routers, bind unbound ones round-robin
python -m hastack.lab.netservice INVENTORY show            agents and routers per agent, as JSON
python -m hastack.lab.netservice INVENTORY move ROUTER HOST   remove + add, as an operator would
"""

from __future__ import annotations

import json
import sys
import time

from hastack.backends import LabNetworkBackend
from hastack.lab.network import network_plan
from hastack.model import Deployment, load_deployment
from hastack.render.etcd import client_endpoints
from hastack.store import EtcdStore

AGENT_DOWN_S = 3.0


def backend_for(dep: Deployment) -> LabNetworkBackend:
    store = EtcdStore(client_endpoints(dep))
    return LabNetworkBackend(store, dep.name, time.time, AGENT_DOWN_S)


def init(dep: Deployment, backend: LabNetworkBackend) -> dict[str, object]:
    n = network_plan(dep)
    for router in n.routers:
        backend.define_router(router.id, router.to_json())
    agents = dep.hosts_of("l3-agent")
    deadline = time.monotonic() + 30
    while {a.host for a in backend.list_agents() if a.alive} != set(agents):
        if time.monotonic() > deadline:
            raise SystemExit(f"L3 agents did not report within 30 s: {backend.list_agents()}")
        time.sleep(0.2)
    bound = backend.bindings()
    for i, router in enumerate(n.routers):
        if router.id not in bound:
            backend.add_router(router.id, agents[i % len(agents)])
    return {"routers": len(n.routers), "agents": list(agents)}


def show(backend: LabNetworkBackend) -> dict[str, object]:
    return {
        "agents": [{"host": a.host, "alive": a.alive, "admin_up": a.admin_up} for a in backend.list_agents()],
        "routers_by_agent": backend.routers_by_agent(),
    }


def main() -> None:
    dep = load_deployment(sys.argv[1])
    backend = backend_for(dep)
    verb = sys.argv[2]
    if verb == "init":
        result = init(dep, backend)
    elif verb == "show":
        result = show(backend)
    elif verb == "move":
        router, host = sys.argv[3], sys.argv[4]
        current = backend.bindings().get(router)
        if current:
            backend.remove_router(router, current)
        backend.add_router(router, host)
        result = {"router": router, "from": current, "to": host}
    elif verb == "move-all":
        source, target = sys.argv[3], sys.argv[4]
        routers = backend.routers_by_agent().get(source, [])
        for router in routers:
            backend.remove_router(router, source)
            backend.add_router(router, target)
        result = {"moved": len(routers), "from": source, "to": target}
    else:
        raise SystemExit(f"unknown verb {verb!r}: init, show, move or move-all")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
