"""A real node agent process for the fault-point tests: `python -m tests.contract.agent_process ETCD NETNS`.

The node agent (agent.node) with the real etcd client, the real kernel gates and the process's own clocks;
the one router it serves is ROUTER in the namespace NETNS (a router host of the test's own: the lab's
would need a whole lab). It renews every 200 ms until killed; HASTACK_FAULT_POINTS stops it where the test
asks (faultpoints.py).
"""

from __future__ import annotations

import sys
import time

from hastack import faultpoints
from hastack.agent.gate import Gates
from hastack.agent.node import NodeAgent
from hastack.store import EtcdStore

ROUTER, HOST, DEPLOYMENT = "r1", "net1", "faults"


class OneRouter:
    def __init__(self, netns: str) -> None:
        self.netns = netns

    def present(self) -> dict[str, str]:
        return {ROUTER: self.netns}

    def version(self) -> object:
        return 0

    def remove(self, router: str) -> None:
        pass

    def opened(self, namespaces: list[str]) -> None:
        pass


def main(endpoint: str, netns: str) -> None:
    store = EtcdStore([endpoint], timeout_s=0.15)
    agent = NodeAgent(
        store, OneRouter(netns), Gates(), DEPLOYMENT, HOST, 1, 100, time.monotonic, time.time,
        fault=faultpoints.from_environment(),
    )  # fmt: skip
    while True:
        print(agent.renew(l3_alive=True), flush=True)
        time.sleep(0.2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
