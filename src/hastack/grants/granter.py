"""A controller's side of the grants: answer each node's rounds, promise to stop, and start again safely.

Per node: when this controller last granted it, the promises it has outstanding (it grants nothing while
any is), and the revision `R_N` its grants carry. A promise is given only after `G + m` without a grant to
that node, and granting stops before the promise is written (`begin_promise` gives its id); each promise
ends only after its own key was deleted (if it still held that id) and the bindings read again
(`end_promise` with that read's revision). A promise whose write is still in flight is outstanding too:
ending an earlier one must not let grants resume under it. No timer ends a promise. Pure: the etcd writes
and reads around it are the caller's.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class NodeGrants:
    last_request: float = float("-inf")
    last_grant: float = float("-inf")
    promises: set[str] = field(default_factory=set)  # ids written or being written, not yet ended
    r_n: int = 0  # the revision of the read that ended the last promise on this node


class Granter:
    def __init__(self, grant_s: float, margin_s: float, clock: Callable[[], float]) -> None:
        self.grant_s, self.margin_s, self.clock = grant_s, margin_s, clock
        self.nodes: dict[str, NodeGrants] = {}
        self._ids = itertools.count(1)

    def _node(self, host: str) -> NodeGrants:
        return self.nodes.setdefault(host, NodeGrants())

    def on_request(self, host: str) -> int | None:
        """A round from `host` arrived: the `R_N` to grant it with, or None while promising."""
        node, now = self._node(host), self.clock()
        node.last_request = now
        if node.promises:
            return None
        node.last_grant = now  # taken before the grant is sent: the promise rule counts from it
        return node.r_n

    def silent_for(self, host: str) -> float:
        """Seconds since `host`'s last round arrived here (infinite if none ever did)."""
        return self.clock() - self._node(host).last_request

    def begin_promise(self, host: str, prefix: str) -> str | None:
        """A new promise's id (`prefix` makes it unique across restarts), if this controller may promise
        to stop granting `host`: no grant for `G + m`. From now on it grants `host` nothing, before the
        promise is written, until every promise it gave is ended."""
        node = self._node(host)
        if not node.promises and self.clock() - node.last_grant < self.grant_s + self.margin_s:
            return None
        promise = f"{prefix}-{next(self._ids)}"
        node.promises.add(promise)
        return promise

    def end_promise(self, host: str, promise: str, read_revision: int) -> None:
        """Promise `promise`'s key is deleted (if it held that id) and the bindings were read at
        `read_revision` after the delete: once no promise is left, grant again with that revision (the
        node must have seen the move, if one committed)."""
        node = self._node(host)
        node.promises.discard(promise)
        node.r_n = max(node.r_n, read_revision)
