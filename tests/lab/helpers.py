"""Probes in the background and faults under the lab lock, for the lab tests."""

from __future__ import annotations

import json
from typing import Any

from hastack.bench import lablink
from hastack.lab import dataplane
from hastack.lab.plan import LabPlan


class Probe:
    """`python -m hastack.bench.probe ...` inside a lab host, running while the test acts."""

    def __init__(self, lab: LabPlan, host: str, *args: str, password: str | None = None) -> None:
        netns = lab.host(host).netns if host in {h.name for h in lab.hosts} else dataplane.client_netns()
        self.proc = lablink.start_probe(netns, *args, password=password)

    def samples(self, timeout: float = 120) -> list[dict[str, Any]]:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return [json.loads(line) for line in out.splitlines()]


def fail(lab: LabPlan, kind: str, target: str) -> None:
    lablink.inject(lab, (kind, target))


def heal(lab: LabPlan, target: str | None = None) -> None:
    lablink.heal(lab, target)


def failures(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in samples if not s["ok"]]
