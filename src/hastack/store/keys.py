"""Where hastack keeps what in the store: every key of one deployment, in one place."""

from __future__ import annotations


def root(deployment: str) -> str:
    return f"/hastack/{deployment}/"


def nodes_prefix(deployment: str) -> str:
    """Node keys: one per network node, bound to its agent's lease (present = the node may serve)."""
    return f"{root(deployment)}nodes/"


def node_key(deployment: str, host: str) -> str:
    return nodes_prefix(deployment) + host


def leader_key(deployment: str) -> str:
    return f"{root(deployment)}controller/leader"


def promises_prefix(deployment: str) -> str:
    """Controllers' promises to grant a node nothing more: the leader's move away from it is conditioned
    on a majority of them (DESIGN-fencing.md, grants)."""
    return f"{root(deployment)}promises/"


def promise_key(deployment: str, host: str, controller: str) -> str:
    return f"{promises_prefix(deployment)}{host}/{controller}"


def promiser_key(deployment: str, controller: str) -> str:
    """The id of the controller's current run: each promise write is conditioned on it."""
    return f"{root(deployment)}promisers/{controller}"


def control_prefix(deployment: str) -> str:
    """What operators set through the controller: `paused`, `policy`."""
    return f"{root(deployment)}control/"


def policy_key(deployment: str) -> str:
    return control_prefix(deployment) + "policy"


def paused_key(deployment: str) -> str:
    return control_prefix(deployment) + "paused"


def failsafe_key(deployment: str) -> str:
    """`off` switches failsafe off: controllers answer no, node agents stop asking (DESIGN-fencing.md)."""
    return control_prefix(deployment) + "failsafe"


def net_prefix(deployment: str) -> str:
    """The network record: L3 agents' reports, router definitions, bindings (backends/lab.py)."""
    return f"{root(deployment)}net/"


def bindings_prefix(deployment: str) -> str:
    """router -> the node that serves it: what the node agents' gates follow."""
    return net_prefix(deployment) + "bindings/"


def binding_key(deployment: str, router: str) -> str:
    return bindings_prefix(deployment) + router


def agents_prefix(deployment: str) -> str:
    """host -> its L3 agent's last report (JSON: heartbeat, admin_up)."""
    return net_prefix(deployment) + "agents/"


def agent_key(deployment: str, host: str) -> str:
    return agents_prefix(deployment) + host


def routers_prefix(deployment: str) -> str:
    """router -> its definition (JSON), in the lab's network service."""
    return net_prefix(deployment) + "routers/"


def router_key(deployment: str, router: str) -> str:
    return routers_prefix(deployment) + router


def changes_gates(deployment: str, key: str) -> bool:
    """Whether a write of `key` changes what some node agent's gates follow (the failsafe promise)."""
    return key.startswith(bindings_prefix(deployment)) or key == policy_key(deployment)
