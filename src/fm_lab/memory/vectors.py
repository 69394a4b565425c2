"""Message vectors in LanceDB: one row per saved message with text, searched by thread or by
resource with the live window (the last N messages) left out in the query itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from fm_lab.memory.embedders import Embedder, Vectors
from fm_lab.memory.history import StoredMessage
from fm_lab.memory.lance import connect, open_table, sql_str, table_names, vector_schema

Scope = Literal["thread", "resource"]
TABLE = "memory_messages"


class MessageVectors:
    """The ``memory_messages`` table of a LanceDB folder, written by one embedder."""

    def __init__(self, path: Path, embedder: Embedder) -> None:
        import pyarrow as pa

        self.path = path
        self.embedder = embedder
        self._schema = vector_schema(
            [("message_id", pa.string()), ("thread_id", pa.string()),
             ("resource_id", pa.string()), ("sequence", pa.int64()),
             ("created_at", pa.float64())], embedder)
        self._table: Any = None

    @property
    def table(self) -> Any:
        if self._table is None:
            self._table = open_table(connect(self.path), TABLE, self._schema, self.embedder,
                                     f"{self.path}/{TABLE}")
        return self._table

    def add(self, stored: Sequence[StoredMessage], vectors: Vectors) -> None:
        """Add one vector per stored message (same order)."""
        import pyarrow as pa

        if not stored:
            return
        flat = pa.array(vectors.reshape(-1), pa.float32())
        self.table.add(pa.table({
            "message_id": [s.message_id for s in stored],
            "thread_id": [s.thread_id for s in stored],
            "resource_id": pa.array([s.resource_id for s in stored], pa.string()),
            "sequence": pa.array([s.sequence for s in stored], pa.int64()),
            "created_at": pa.array([s.created_at for s in stored], pa.float64()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, self.embedder.dim),
        }, schema=self._schema))

    def search(self, vector: Vectors, *, top_k: int, scope: Scope, thread_id: str,
               resource_id: str | None, live_from: int | None) -> list[tuple[str, int]]:
        """The ``(thread_id, sequence)`` of the ``top_k`` nearest messages in scope, leaving
        out this thread's messages from sequence ``live_from`` on (already in context)."""
        if scope == "resource":
            if resource_id is None:
                raise ValueError("semantic recall with scope='resource' needs a resource_id")
            where = f"resource_id = {sql_str(resource_id)}"
            if live_from is not None:
                where += (f" and not (thread_id = {sql_str(thread_id)} "
                          f"and sequence >= {int(live_from)})")
        elif scope == "thread":
            where = f"thread_id = {sql_str(thread_id)}"
            if live_from is not None:
                where += f" and sequence < {int(live_from)}"
        else:
            raise ValueError(f"scope must be 'thread' or 'resource', got {scope!r}")
        rows = (self.table.search(vector.reshape(-1), vector_column_name="vector")
                .distance_type("cosine").where(where, prefilter=True)
                .select(["thread_id", "sequence", "_distance"]).limit(top_k).to_arrow())
        return list(zip(rows.column("thread_id").to_pylist(),
                        rows.column("sequence").to_pylist(), strict=True))

    @staticmethod
    def delete_thread_at(path: Path, thread_id: str) -> None:
        """Remove a thread's vectors from the folder at ``path`` (whatever embedder wrote
        them)."""
        if not path.exists():
            return
        db = connect(path)
        if TABLE in table_names(db):
            db.open_table(TABLE).delete(f"thread_id = {sql_str(thread_id)}")

    def optimize(self) -> None:
        """Index thread and resource columns and compact the table (after bulk loads)."""
        table = self.table
        names = {i.name for i in table.list_indices()}
        if "thread_id_idx" not in names:
            table.create_scalar_index("thread_id", index_type="BTREE")
        if "resource_id_idx" not in names:
            table.create_scalar_index("resource_id", index_type="BTREE")
        table.optimize()

    def count(self) -> int:
        return int(self.table.count_rows())
