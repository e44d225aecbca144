"""The deployment model: the inventory schema, its cross-field checks, and the resolved Deployment."""

from hastack.model.checks import Problem, check, resolve
from hastack.model.deployment import Deployment
from hastack.model.inventory import Host, Inventory, Lab, Placement, Timing, Vip
from hastack.model.load import InventoryError, format_path, load_deployment, load_inventory, parse_inventory

__all__ = [
    "Deployment",
    "Host",
    "Inventory",
    "InventoryError",
    "Lab",
    "Placement",
    "Problem",
    "Timing",
    "Vip",
    "check",
    "format_path",
    "load_deployment",
    "load_inventory",
    "parse_inventory",
    "resolve",
]
