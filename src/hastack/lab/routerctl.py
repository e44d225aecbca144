"""The lab's record of routers (its stand-in for neutron-server's), driven from inside a lab host (the root
namespace cannot reach etcd).

python -m hastack.lab.routerctl INVENTORY init            define routers, bind unbound ones round-robin
python -m hastack.lab.routerctl INVENTORY show            agents and routers per agent, as JSON
python -m hastack.lab.routerctl INVENTORY move ROUTER HOST   one transaction, as the controller moves
python -m hastack.lab.routerctl INVENTORY scale-add COUNT HOST   define `bench scale`'s extra routers there
python -m hastack.lab.routerctl INVENTORY scale-remove [KEEP]    forget extra routers (but the first KEEP)
"""

from __future__ import annotations

import json
import sys
import time

from hastack.backends import BackendError, LabNetworkBackend
from hastack.lab.topology import SCALE_PREFIX, network_plan, scale_router_id, scale_routers
from hastack.model import Deployment, load_deployment
from hastack.store import StoreError
from hastack.store.connect import open_store

AGENT_DOWN_S = 3.0


def backend_for(dep: Deployment) -> LabNetworkBackend:
    store = open_store(dep)
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


def scale_add(dep: Deployment, backend: LabNetworkBackend, count: int, host: str) -> dict[str, object]:
    """Define the first `count` extra routers, each bound to `host` in the same transaction."""
    if host not in {a.host for a in backend.list_agents() if a.alive}:
        raise SystemExit(f"no live L3 agent on {host}")
    routers = scale_routers(dep, count)
    defined = set(backend.routers())
    added = [r for r in routers if r.id not in defined]
    for router in added:
        backend.define_router(router.id, router.to_json(), host)
    return {"defined": len(added), "host": host}


def scale_remove(backend: LabNetworkBackend, keep: int = 0) -> dict[str, object]:
    """Forget the extra routers, all or all but the first `keep`."""
    kept = {scale_router_id(i) for i in range(keep)}
    extra = [r for r in backend.routers() if r.startswith(SCALE_PREFIX) and r not in kept]
    for router in extra:
        backend.forget_router(router)
    return {"removed": len(extra)}


def show(backend: LabNetworkBackend) -> dict[str, object]:
    return {
        "agents": [{"host": a.host, "alive": a.alive, "admin_up": a.admin_up} for a in backend.list_agents()],
        "routers_by_agent": backend.routers_by_agent(),
    }


def main() -> None:
    try:
        _main()
    except (BackendError, StoreError) as e:  # one line, as every hastack command says what went wrong
        raise SystemExit(f"routerctl: {e}") from e


def _main() -> None:
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
        # One transaction: removed, then added, a router is unbound in between, and the controller places
        # every router it finds unbound (CI saw it placed back on its old node between the two).
        if current:
            backend.move_router(router, current, host)
        else:
            backend.add_router(router, host)
        result = {"router": router, "from": current, "to": host}
    elif verb == "move-all":
        source, target = sys.argv[3], sys.argv[4]
        routers = backend.routers_by_agent().get(source, [])
        failed = {r: e for r, e in backend.move_routers(routers, source, target).items() if e is not None}
        if failed:
            raise BackendError(
                f"{len(failed)} of {len(routers)} routers not moved: {next(iter(failed.values()))}"
            )
        result = {"moved": len(routers), "from": source, "to": target}
    elif verb == "scale-add":
        result = scale_add(dep, backend, int(sys.argv[3]), sys.argv[4])
    elif verb == "scale-remove":
        result = scale_remove(backend, int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    else:
        raise SystemExit(f"unknown verb {verb!r}: init, show, move, move-all, scale-add or scale-remove")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
