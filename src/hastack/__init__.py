"""hastack: adaptive, scalable high availability for the control plane of infrastructure clouds."""

__version__ = "0.1.0"
