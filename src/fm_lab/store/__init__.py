"""Storage: DuckDB tables fed by per-run journals."""

from fm_lab.store.duckdb_store import RunSnapshot, Store
from fm_lab.store.errors import RunNotFoundError, StoreError, StoreLockedError, StoreVersionError
from fm_lab.store.journal import Journal, RunLockedError

__all__ = [
    "Journal",
    "RunLockedError",
    "RunNotFoundError",
    "RunSnapshot",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
]
