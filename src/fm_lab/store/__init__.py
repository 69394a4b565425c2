"""Storage: the store seam (:class:`RunStore`), the DuckDB store fed by per-run journals,
and the in-memory store of engine tests."""

from fm_lab.store.base import RunSnapshot, RunStore, UnsupportedStoreError
from fm_lab.store.duckdb_store import Store
from fm_lab.store.errors import RunNotFoundError, StoreError, StoreLockedError, StoreVersionError
from fm_lab.store.journal import Journal, RunLockedError
from fm_lab.store.memory_store import MemoryStore
from fm_lab.store.urls import open_store

__all__ = [
    "Journal",
    "MemoryStore",
    "RunLockedError",
    "RunNotFoundError",
    "RunSnapshot",
    "RunStore",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
    "UnsupportedStoreError",
    "open_store",
]
