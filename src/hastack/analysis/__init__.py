"""Failure-impact analysis of a deployment (the paper's section 3, applied to a concrete inventory)."""

from hastack.analysis.impact import Effect, Failure, Outcome, Status, dependencies, evaluate
from hastack.analysis.report import Analysis, Spof, analyze

__all__ = [
    "Analysis",
    "Effect",
    "Failure",
    "Outcome",
    "Spof",
    "Status",
    "analyze",
    "dependencies",
    "evaluate",
]
