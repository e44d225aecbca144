"""The controller's act step: carry out router moves through the NetworkBackend, in parallel, bounded.

Every move is conditioned on the leader's fencing token; a move away from a failed node is also conditioned
on what makes it safe (`away`): that node key staying absent, so a node that comes back in the meantime
keeps its router, or, for a node silent to the grants, each promise of a majority of controllers still
holding. A move away from a node that still holds its lease (an agent disabled by the operator, an
operator's move) removes first and adds only once the source's gate has run out for sure (one lease TTL):
never two nodes forwarding the same router.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hastack.backends.base import BackendError, NetworkBackend
from hastack.controller.decide import Move
from hastack.store import Compare


@dataclass(frozen=True)
class Outcome:
    move: Move
    seconds: float
    error: str | None  # None: done


def move_one(backend: NetworkBackend, m: Move, fence: Sequence[Compare], hold: Callable[[str], None]) -> None:
    """One move that is not away from a failed node (those go in bulk: `apply`); BackendError if a
    condition failed or the backend refused."""
    if not m.source:
        backend.add_router(m.router, m.target, only_if=fence)
        return
    backend.remove_router(m.router, m.source, only_if=fence)
    hold(m.source)  # the source still holds its lease: wait until its gate has certainly shut
    backend.add_router(m.router, m.target, only_if=fence)


def apply(
    backend: NetworkBackend,
    moves: Sequence[Move],
    fence: Sequence[Compare],
    away: Mapping[str, Sequence[Compare]],
    hold: Callable[[str], None],
    concurrency: int,
) -> list[Outcome]:
    """Moves away from a failed node (`away`: source -> the conditions that make it safe) go in bulk,
    one call per (source, target); the rest one by one. Both in parallel, at most `concurrency` calls
    at once; outcomes in the order of `moves`."""
    bulk: dict[tuple[str, str], list[Move]] = {}
    single: list[Move] = []
    for m in moves:
        if m.source and m.source in away:
            bulk.setdefault((m.source, m.target), []).append(m)
        else:
            single.append(m)

    def run_bulk(group: list[Move]) -> list[Outcome]:
        source, target = group[0].source, group[0].target
        started = time.monotonic()
        try:
            errors = backend.move_routers([m.router for m in group], source, target, [*fence, *away[source]])
        except BackendError as e:
            errors = {m.router: str(e) for m in group}
        took = time.monotonic() - started
        return [Outcome(m, took, errors.get(m.router, "no answer for this router")) for m in group]

    def run_one(m: Move) -> list[Outcome]:
        started = time.monotonic()
        try:
            move_one(backend, m, fence, hold)
        except BackendError as e:
            return [Outcome(m, time.monotonic() - started, str(e))]
        return [Outcome(m, time.monotonic() - started, None)]

    if not moves:
        return []
    jobs = [(run_bulk, g) for g in bulk.values()] + [(run_one, m) for m in single]
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs)))) as pool:
        done = [o for outcomes in pool.map(lambda j: j[0](j[1]), jobs) for o in outcomes]
    order = {id(m): i for i, m in enumerate(moves)}
    return sorted(done, key=lambda o: order[id(o.move)])


def summary(outcomes: Sequence[Outcome]) -> str:
    failed = [o for o in outcomes if o.error]
    slowest = max((o.seconds for o in outcomes), default=0.0)
    said = f"{len(outcomes) - len(failed)} of {len(outcomes)} moved (slowest {slowest * 1000:.0f} ms)"
    if failed:
        said += f"; {len(failed)} failed, first: {failed[0].error}"
    return said
