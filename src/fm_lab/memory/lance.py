"""LanceDB beside the DuckDB file: ``<db>.lance/``, one table per use, each stamped with the
embedder that wrote it. A server store has no folder beside it: its LanceDB folder is
``$FM_LAB_VECTORS``, a location every user of the store reaches, or none (refused)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.memory.embedders import Embedder, check_stamp

if TYPE_CHECKING:
    import pyarrow as pa

    from fm_lab.store.base import RunStore

VECTORS_ENV = "FM_LAB_VECTORS"
EMBEDDER_KEY = b"fm_lab.embedder"
DIM_KEY = b"fm_lab.dim"
_TEMP: dict[int, Path] = {}
_TEMP_LOCK = threading.Lock()


def lance_path(store: RunStore | str | Path) -> Path:
    """The LanceDB folder of ``store`` (a store or the path of its DuckDB file):
    ``<db file>.lance`` (a temporary folder, removed at exit, for a ``:memory:`` store);
    ``$FM_LAB_VECTORS`` for a server store (``UnsupportedStoreError`` when unset: vectors in a
    folder of this user's would be invisible to the store's other users)."""
    from fm_lab.store.urls import scheme_of

    if isinstance(store, str | Path):
        return Path(str(Path(store).expanduser().resolve()) + ".lance")
    if not store.memory and scheme_of(store.path) is not None:
        return shared_folder(store)
    if not store.memory:
        return Path(store.path + ".lance")
    with _TEMP_LOCK:
        if id(store) not in _TEMP:
            folder = Path(tempfile.mkdtemp(prefix="fm_lab_lance_"))
            atexit.register(shutil.rmtree, folder, True)
            _TEMP[id(store)] = folder
        return _TEMP[id(store)]


def shared_folder(store: RunStore) -> Path:
    """``$FM_LAB_VECTORS``, the LanceDB folder of a server store."""
    from fm_lab.store.base import UnsupportedStoreError

    shared = os.environ.get(VECTORS_ENV, "").strip()
    if not shared:
        raise UnsupportedStoreError(
            f"vectors for {store.path}: the store does not keep vectors (no pgvector) and "
            f"{VECTORS_ENV} names no shared LanceDB folder; set {VECTORS_ENV}=/shared/path "
            "(a folder every user of the store can write) or install pgvector in its database")
    return Path(shared).expanduser().resolve()


def connect(path: Path) -> Any:
    """A LanceDB connection to ``path`` (created on demand) that sees every commit, from this
    process or another, at once (``read_consistency_interval=0``)."""
    from datetime import timedelta

    import lancedb

    path.mkdir(parents=True, exist_ok=True)
    return lancedb.connect(str(path), read_consistency_interval=timedelta(0))


def table_names(db: Any) -> list[str]:
    """The tables in a LanceDB folder."""
    names: list[str] = []
    token = None
    while True:
        page = db.list_tables(page_token=token)
        names.extend(page.tables)
        token = page.page_token
        if not token:
            return names


def vector_schema(fields: list[tuple[str, pa.DataType]], embedder: Embedder) -> pa.Schema:
    """``fields`` plus a ``vector`` column of the embedder's dimension, stamped with its name."""
    import pyarrow as pa

    return pa.schema([*fields, ("vector", pa.list_(pa.float32(), embedder.dim))],
                     metadata={EMBEDDER_KEY: embedder.name.encode(),
                               DIM_KEY: str(embedder.dim).encode()})


def check_embedder(table: Any, embedder: Embedder, where: str) -> None:
    """Raise :class:`EmbedderMismatchError` unless ``table`` was written by ``embedder``."""
    meta = table.schema.metadata or {}
    check_stamp(meta.get(EMBEDDER_KEY, b"?").decode(), meta.get(DIM_KEY, b"?").decode(),
                embedder, where)


def open_table(db: Any, name: str, schema: pa.Schema, embedder: Embedder, where: str) -> Any:
    """Open table ``name`` (creating it with ``schema``) and check its embedder."""
    if name in table_names(db):
        table = db.open_table(name)
    else:
        table = db.create_table(name, schema=schema, exist_ok=True)
    check_embedder(table, embedder, where)
    return table


def sql_str(value: str) -> str:
    """``value`` as a quoted SQL string literal for a LanceDB filter."""
    return "'" + value.replace("'", "''") + "'"
