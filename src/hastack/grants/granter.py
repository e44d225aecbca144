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
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class NodeGrants:
    last_request: float
    last_grant: float
    promises: dict[str, float] = field(default_factory=dict)  # id -> begun; written or being written
    r_n: int = 0  # the revision of the read that ended the last promise on this node
    applied: int = 0  # the node's last word: its gates follow a bindings read at this revision


class Granter:
    def __init__(self, grant_s: float, margin_s: float, clock: Callable[[], float]) -> None:
        self.grant_s, self.margin_s, self.clock = grant_s, margin_s, clock
        self.nodes: dict[str, NodeGrants] = {}
        self._ids = itertools.count(1)
        self.started = clock()
        self.floor: int | None = None  # the revision every grant carries at least; None: not started
        # The rounds, the promise requests, the keeper and the leader's tick each call from a thread.
        self.lock = threading.RLock()

    def start(self, read_revision: int) -> None:
        """Grant from now on, with at least this revision (of a bindings read made after this controller
        deleted the promise keys its earlier runs may have left)."""
        with self.lock:
            self.floor = read_revision

    def _node(self, host: str) -> NodeGrants:
        if host not in self.nodes:
            self.nodes[host] = NodeGrants(self.started, self.started)
        return self.nodes[host]

    def on_request(self, host: str, applied: int = 0) -> int | None:
        """A round from `host` arrived: the `R_N` to grant it with, or None while promising. `applied`:
        the revision of the bindings read its gates were last applied from, as it says (the latest word
        counts, not the highest: a restarted agent has applied nothing yet)."""
        with self.lock:
            node, now = self._node(host), self.clock()
            node.last_request, node.applied = now, applied
            if node.promises or self.floor is None:
                return None
            node.last_grant = now  # taken before the grant is sent: the promise rule counts from it
            return max(node.r_n, self.floor)

    def released(self, host: str, revision: int) -> bool:
        """Whether `host` last said its gates follow a bindings read at `revision` or later."""
        with self.lock:
            return self._node(host).applied >= revision

    def granted_ago(self, host: str) -> float:
        """Seconds since this controller last granted `host` (or started)."""
        with self.lock:
            return self.clock() - self._node(host).last_grant

    def silent_for(self, host: str) -> float:
        """Seconds since `host`'s last round arrived here (or since this controller started)."""
        with self.lock:
            return self.clock() - self._node(host).last_request

    def begin_promise(self, host: str, prefix: str) -> str | None:
        """A new promise's id (`prefix` makes it unique across restarts), if this controller may promise
        to stop granting `host`: no grant for `G + m`. From now on it grants `host` nothing, before the
        promise is written, until every promise it gave is ended."""
        with self.lock:
            node = self._node(host)
            if not node.promises and self.clock() - node.last_grant < self.grant_s + self.margin_s:
                return None
            promise = f"{prefix}-{next(self._ids)}"
            node.promises[promise] = self.clock()
            return promise

    def end_promise(self, host: str, promise: str, read_revision: int) -> None:
        """Promise `promise`'s key is deleted (if it held that id) and the bindings were read at
        `read_revision` after the delete: once no promise is left, grant again with that revision (the
        node must have seen the move, if one committed)."""
        with self.lock:
            node = self._node(host)
            node.promises.pop(promise, None)
            node.r_n = max(node.r_n, read_revision)

    def promises_older_than(self, age_s: float) -> list[tuple[str, str]]:
        """(host, id) of every promise begun `age_s` ago or more: time for its keeper to end it."""
        with self.lock:
            now = self.clock()
            return [
                (host, promise)
                for host, node in self.nodes.items()
                for promise, begun in node.promises.items()
                if now - begun >= age_s
            ]
