"""The component catalog: the paper's Table 1 as data, plus hastack's own building blocks."""

from hastack.catalog.components import (
    CATALOG,
    Component,
    Mechanism,
    Role,
    Scope,
    Severity,
    component,
    component_names,
)

__all__ = [
    "CATALOG",
    "Component",
    "Mechanism",
    "Role",
    "Scope",
    "Severity",
    "component",
    "component_names",
]
