"""Network backends: the lab's network service now, Neutron later, behind one interface."""

from hastack.backends.base import Agent, BackendError, NetworkBackend
from hastack.backends.lab import LabNetworkBackend

__all__ = ["Agent", "BackendError", "LabNetworkBackend", "NetworkBackend"]
