"""hastack's coordination store: the interface, an etcd backend and an in-memory one for unit tests."""

from hastack.store.base import Absent, Compare, Delete, KeyValue, Put, Store, StoreError, ValueIs
from hastack.store.etcd import EtcdStore
from hastack.store.memory import MemoryStore

__all__ = [
    "Absent",
    "Compare",
    "Delete",
    "EtcdStore",
    "KeyValue",
    "MemoryStore",
    "Put",
    "Store",
    "StoreError",
    "ValueIs",
]
