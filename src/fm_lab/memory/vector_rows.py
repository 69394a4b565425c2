"""A store's vector tables read for ``fm-lab store copy``: where they are (the store's own
pgvector tables or its LanceDB folder), each table's embedder stamp, and its rows a batch at a
time with the vector as a list of floats, so a copy never holds a whole table's vectors.

A copy reads a table twice (which rows it lacks, then those rows' vectors) while other
processes may write it: a LanceDB table is read at the version it had when opened, and
pgvector tables inside :meth:`Place.snapshot` in one repeatable-read transaction, so both
reads see the same rows and the copy writes what it planned, whole."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fm_lab.memory.embedders import Vectors
from fm_lab.memory.lance import DIM_KEY, EMBEDDER_KEY, connect, table_names
from fm_lab.memory.vector_backend import Backend, choose, folder_for

if TYPE_CHECKING:
    from pathlib import Path

    from fm_lab.store.base import SqlStore

BATCH = 2_000  # rows per batch read (and written by the copies)
VECTOR = "vector"  # the vector column, as LanceDB names it
INDEXED = "indexed"  # whether the row has a vector (a pgvector table: a non-null embedding)
_PG_COLUMNS = {VECTOR: "embedding::real[]", INDEXED: "embedding is not null"}


@dataclass(frozen=True)
class StampOnly:
    """An embedder known by its stamp alone: vectors made by it can be stored, not made."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        raise RuntimeError(f"vectors of embedder {self.name!r} are copied here, never made")

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        return self.embed(texts)


@dataclass(frozen=True)
class Place:
    """Where a store keeps its vector tables: ``folder`` is its LanceDB folder (None for
    pgvector)."""

    backend: Backend
    folder: Path | None

    def names(self, store: SqlStore) -> list[str]:
        """The vector tables there."""
        if self.folder is None:
            from fm_lab.memory.pg_vectors import REGISTRY, table_exists

            with store.connection() as con:
                if not table_exists(con, REGISTRY):
                    return []
                rows = con.execute(f"select name from {REGISTRY} order by name").fetchall()
            return [str(r[0]) for r in rows]
        return sorted(table_names(connect(self.folder))) if self.folder.exists() else []

    @contextlib.contextmanager
    def snapshot(self, store: SqlStore) -> Iterator[None]:
        """Reads of this place's tables in the block see one state of them (see the module):
        pgvector tables through one connection in a repeatable-read transaction."""
        if self.folder is not None:  # LanceDB: each table is pinned to its version
            yield
            return
        with store.hold(), store.connection() as con, con.raw.transaction():
            con.execute("set transaction isolation level repeatable read")
            yield

    def table(self, store: SqlStore, name: str) -> VectorTable | None:
        """Table ``name`` there (None when there is none)."""
        if self.folder is None:
            return _pg_table(store, name)
        if name not in self.names(store):
            return None
        lance = connect(self.folder).open_table(name)
        lance.checkout(lance.version)  # read as it is now, whatever others write meanwhile
        meta = lance.schema.metadata or {}
        stamp = StampOnly(meta.get(EMBEDDER_KEY, b"").decode(),
                          int(meta.get(DIM_KEY, b"0").decode() or 0))
        return VectorTable(stamp, store, name, lance)


def place(store: SqlStore) -> Place | None:
    """Where ``store`` keeps vectors (None: a server store with neither pgvector nor a shared
    LanceDB folder keeps none)."""
    from fm_lab.store.base import UnsupportedStoreError

    if choose(store) == "pgvector":
        return Place("pgvector", None)
    try:
        return Place("lancedb", folder_for(store))
    except UnsupportedStoreError:
        return None


@dataclass(frozen=True)
class VectorTable:
    """One vector table of a store: its embedder's stamp and its rows (``lance`` is the
    LanceDB table; None for the pgvector table ``name``)."""

    embedder: StampOnly
    store: SqlStore
    name: str
    lance: Any = None

    def batches(self, columns: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        """Every row's ``columns`` (:data:`VECTOR`: the vector as floats; :data:`INDEXED`:
        whether it has one), :data:`BATCH` rows at a time."""
        size = BATCH
        if self.lance is not None:
            for batch in self.lance.search().select(list(columns)).to_batches(size):
                yield batch.to_pylist()
            return
        from fm_lab.memory.pg_vectors import ident
        from fm_lab.store.copy_io import fetch_batches

        picked = ", ".join(_PG_COLUMNS.get(c, ident(c)) for c in columns)
        with self.store.connection() as con:
            for rows in fetch_batches(con, f"select {picked} from {ident(self.name)}",
                                      size=size):
                yield [dict(zip(columns, row, strict=True)) for row in rows]


def _pg_table(store: SqlStore, name: str) -> VectorTable | None:
    from fm_lab.memory.pg_vectors import REGISTRY, table_exists
    from fm_lab.memory.sql import first

    with store.connection() as con:
        if not (table_exists(con, REGISTRY) and table_exists(con, name)):
            return None
        row = first(con.execute(f"select embedder, dim from {REGISTRY} where name = ?",
                                [name]))
    return None if row is None else VectorTable(StampOnly(str(row[0]), int(row[1])), store,
                                                name)
