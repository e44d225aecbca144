"""Network backends behind one interface: the lab's network service, and Neutron (backends.neutron, imported
apart: openstacksdk is slow to load)."""

from hastack.backends.base import Agent, BackendError, NetworkBackend
from hastack.backends.lab import LabNetworkBackend

__all__ = ["Agent", "BackendError", "LabNetworkBackend", "NetworkBackend"]
