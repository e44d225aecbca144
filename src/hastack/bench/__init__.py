"""Measurement: load probes, experiments and their reports."""
