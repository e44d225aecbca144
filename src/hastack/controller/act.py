"""The controller's act step: carry out router moves through the NetworkBackend, in parallel, bounded.

Every move is conditioned on the leader's fencing token; a move away from a node whose lease is gone is also
conditioned on that node key staying absent, so a node that comes back in the meantime keeps its router. A
move away from a node that still holds its lease (an agent disabled by the operator, an operator's move)
removes first and adds only once the source's gate has run out for sure (one lease TTL): never two nodes
forwarding the same router.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hastack.backends.base import BackendError, NetworkBackend
from hastack.controller.decide import Move
from hastack.store import Absent, Compare


@dataclass(frozen=True)
class Outcome:
    move: Move
    seconds: float
    error: str | None  # None: done


def move_one(
    backend: NetworkBackend, m: Move, fence: Sequence[Compare], source_gone: Compare | None, hold_s: float
) -> None:
    """One move; BackendError if a condition failed or the backend refused."""
    if not m.source:
        backend.add_router(m.router, m.target, only_if=fence)
        return
    if source_gone is not None:
        backend.move_router(m.router, m.source, m.target, only_if=[*fence, source_gone])
        return
    backend.remove_router(m.router, m.source, only_if=fence)
    time.sleep(hold_s)  # the source still holds its lease: wait until its gate has certainly shut
    backend.add_router(m.router, m.target, only_if=fence)


def apply(
    backend: NetworkBackend,
    moves: Sequence[Move],
    fence: Sequence[Compare],
    node_key: Callable[[str], str],
    lease_gone: Callable[[str], bool],
    hold_s: float,
    concurrency: int,
) -> list[Outcome]:
    def run(m: Move) -> Outcome:
        started = time.monotonic()
        gone = Absent(node_key(m.source)) if m.source and lease_gone(m.source) else None
        try:
            move_one(backend, m, fence, gone, hold_s)
        except BackendError as e:
            return Outcome(m, time.monotonic() - started, str(e))
        return Outcome(m, time.monotonic() - started, None)

    if not moves:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(moves)))) as pool:
        return list(pool.map(run, moves))


def summary(outcomes: Sequence[Outcome]) -> str:
    failed = [o for o in outcomes if o.error]
    slowest = max((o.seconds for o in outcomes), default=0.0)
    said = f"{len(outcomes) - len(failed)} of {len(outcomes)} moved (slowest {slowest * 1000:.0f} ms)"
    if failed:
        said += f"; {len(failed)} failed, first: {failed[0].error}"
    return said
