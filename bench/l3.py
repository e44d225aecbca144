"""Benchmark: network-node failover on the paper lab, hastack beside the paper's and Neutron's policies.

    sudo .venv/bin/hastack lab up examples/paper.yaml
    sudo .venv/bin/python bench/l3.py [--quick]

The same as `hastack bench l3 examples/paper.yaml -o results` (--quick: hastack only, 3 trials each).
Writes results/l3.json (every ping and the gate samples' verdicts per trial), results/l3.png and
results/REPORT.md.
"""

from __future__ import annotations

import sys

from hastack.cli.errors import run_guarded
from hastack.cli.main import cli

if __name__ == "__main__":
    quick = ["--policy", "hastack", "--repeat", "3"] if "--quick" in sys.argv[1:] else []
    sys.exit(run_guarded(cli, ["bench", "l3", "examples/paper.yaml", "-o", "results", *quick]))
