"""Fakes of hastack's own interfaces shared by several suites."""

from __future__ import annotations


class Clock:
    """A clock the test moves by hand: `clock.now += 0.5`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
