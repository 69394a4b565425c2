"""The default store: the one :func:`connect` opened last, or the default file on first use.

It lives in ``store/``, the lowest layer that needs it (tracing, memory, knowledge bases,
batches and the engine all do); ``fm_lab.connect`` and ``fm_lab.default_store`` re-export it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from fm_lab.store.urls import open_store

if TYPE_CHECKING:
    from fm_lab.store.base import RunStore
    from fm_lab.store.journal import Durability

_STORE: RunStore | None = None
DEFAULT_FILE = "fm_lab.duckdb"
STORE_ENV = "FM_LAB_STORE"  # the default store's file (batch notebooks' kernels get it)


def home() -> Path:
    """``$FM_LAB_HOME`` or ``./.fm_lab``."""
    return Path(os.environ.get("FM_LAB_HOME", ".fm_lab")).expanduser()


def connect(
    path: str | Path | None = None, *, read_only: bool = False, durability: Durability = "fsync"
) -> RunStore:
    """Open (and make default) the store ``path`` names (default ``$FM_LAB_STORE``, else
    ``$FM_LAB_HOME/fm_lab.duckdb``): a DuckDB file path, ``":memory:"`` (a throw-away DuckDB
    store), ``duckdb://<path>``, ``memory://`` (runs only, no SQL: engine tests), or a URL
    whose scheme a package registers under the ``fm_lab.stores`` entry points; an unknown
    scheme is refused, never taken for a file name. ``durability``: ``fsync`` (a committed
    node survives a power cut), ``process`` (survives a killed process or kernel).

    >>> store = connect(":memory:")
    >>> store.memory
    True
    """
    global _STORE
    target = path if path is not None else os.environ.get(STORE_ENV) or home() / DEFAULT_FILE
    _STORE = open_store(target, read_only=read_only, durability=durability)
    return _STORE


def current() -> RunStore | None:
    """The store :func:`connect` opened last, if any (without opening one)."""
    return _STORE


def default_store() -> RunStore:
    """The store set by :func:`connect`, opening the default one on first use."""
    return _STORE if _STORE is not None else connect()

