"""Messages in LanceDB: one row per saved message (the chat dict, thread, resource,
sequence, and a vector when it has text). Recall searches the vectors by thread or resource,
with the live window (the last N messages) left out in the query itself, then fetches each
hit's neighbours by sequence range in one more query on the same table."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from fm_lab.memory.embedders import Embedder, Vectors
from fm_lab.memory.history import StoredMessage, text_of
from fm_lab.memory.lance import connect, open_table, sql_str, table_names, vector_schema

Scope = Literal["thread", "resource"]
TABLE = "memory_messages"
OPTIMIZE_EVERY = 200  # appends between compactions (each append is a LanceDB fragment)
_KNOWN_CHUNK = 2_000  # ids per lookup query
_COLUMNS = ["message_id", "thread_id", "resource_id", "sequence", "created_at", "message"]


class MessageVectors:
    """The ``memory_messages`` table of a LanceDB folder, written by one embedder."""

    backend = "lancedb"

    def __init__(self, path: Path, embedder: Embedder) -> None:
        import pyarrow as pa

        self.path = path
        self.embedder = embedder
        self._schema = vector_schema(
            [("message_id", pa.string()), ("thread_id", pa.string()),
             ("resource_id", pa.string()), ("sequence", pa.int64()),
             ("created_at", pa.float64()), ("message", pa.string()),
             ("indexed", pa.bool_())], embedder)
        self._table: Any = None
        self._appends = 0

    @property
    def table(self) -> Any:
        if self._table is None:
            self._table = open_table(connect(self.path), TABLE, self._schema, self.embedder,
                                     f"{self.path}/{TABLE}")
        return self._table

    def check(self) -> None:
        """Open (or create) the table; refuse another embedder's table."""
        _ = self.table

    def add(self, stored: Sequence[StoredMessage], vectors: Vectors) -> None:
        """Add the stored messages; ``vectors`` has one row per message with text (in order).
        Messages without text are kept for context windows but never found by search."""
        import numpy as np
        import pyarrow as pa

        if not stored:
            return
        has_text = [bool(s.text.strip()) for s in stored]
        full = np.zeros((len(stored), self.embedder.dim), np.float32)
        full[np.asarray(has_text, bool)] = vectors
        self.table.add(pa.table({
            "message_id": [s.message_id for s in stored],
            "thread_id": [s.thread_id for s in stored],
            "resource_id": pa.array([s.resource_id for s in stored], pa.string()),
            "sequence": pa.array([s.sequence for s in stored], pa.int64()),
            "created_at": pa.array([s.created_at for s in stored], pa.float64()),
            "message": [json.dumps(s.message) for s in stored],
            "indexed": has_text,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(full.reshape(-1), pa.float32()),
                                                        self.embedder.dim),
        }, schema=self._schema))
        self._appends += 1
        if self._appends % OPTIMIZE_EVERY == 0:
            self.optimize()

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
                .distance_type("cosine").where(f"indexed and {where}", prefilter=True)
                .select(["thread_id", "sequence", "_distance"]).limit(top_k).to_arrow())
        return list(zip(rows.column("thread_id").to_pylist(),
                        rows.column("sequence").to_pylist(), strict=True))

    def windows(self, hits: Iterable[tuple[str, int]], before: int,
                after: int) -> list[StoredMessage]:
        """Each hit ``(thread_id, sequence)`` with ``before`` earlier and ``after`` later
        messages of its own thread, in one query; distinct, in time order."""
        pairs = sorted(set(hits))
        if not pairs:
            return []
        where = " or ".join(
            f"(thread_id = {sql_str(t)} and sequence between {int(s) - before} "
            f"and {int(s) + after})" for t, s in pairs)
        rows = (self.table.search().where(where).select(_COLUMNS)
                .limit(len(pairs) * (before + after + 1)).to_arrow().to_pylist())
        found = {(r["thread_id"], r["sequence"]): r for r in rows}
        out = []
        for r in sorted(found.values(), key=lambda r: (r["created_at"], r["thread_id"],
                                                       r["sequence"])):
            message = json.loads(r["message"])
            out.append(StoredMessage(r["message_id"], r["thread_id"], r["resource_id"],
                                     int(r["sequence"]), float(r["created_at"]), message,
                                     text_of(message)))
        return out

    def delete_thread(self, thread_id: str) -> None:
        """Remove a thread's rows."""
        self.delete_thread_at(self.path, thread_id)

    def drop(self) -> None:
        """Drop the table (a reindex makes it again, for this embedder)."""
        if self.path.exists():
            db = connect(self.path)
            if TABLE in table_names(db):
                db.drop_table(TABLE)
        self._table = None

    @staticmethod
    def delete_thread_at(path: Path, thread_id: str) -> None:
        """Remove a thread's rows from the folder at ``path`` (whatever embedder wrote
        them)."""
        if not path.exists():
            return
        db = connect(path)
        if TABLE in table_names(db):
            db.open_table(TABLE).delete(f"thread_id = {sql_str(thread_id)}")

    def optimize(self) -> None:
        """Index the thread and resource columns, compact the table and update its indexes
        (done every few hundred appends; call it after bulk loads)."""
        from lancedb.index import BTree

        table = self.table
        names = {i.name for i in table.list_indices()}
        for column in ("thread_id", "resource_id"):
            if f"{column}_idx" not in names:
                table.create_index(column, config=BTree())
        table.optimize()

    def count(self) -> int:
        """Messages in the table."""
        return int(self.table.count_rows())

    def known(self, message_ids: Sequence[str]) -> set[str]:
        """The ids among ``message_ids`` that have a row here (none when the table is not
        made yet)."""
        if not message_ids or not self.path.exists() or TABLE not in table_names(
                connect(self.path)):
            return set()
        found: set[str] = set()
        for start in range(0, len(message_ids), _KNOWN_CHUNK):
            part = message_ids[start:start + _KNOWN_CHUNK]
            where = f"message_id in ({', '.join(sql_str(i) for i in part)})"
            rows = self.table.search().where(where).select(["message_id"]).limit(
                len(part)).to_arrow()
            found.update(rows.column("message_id").to_pylist())
        return found
