"""Vectors in the store itself (pgvector; the store declares ``vectors``): a table per use,
created on first use for the embedder's dimension and stamped with its name in
``vector_tables``, with an HNSW index on cosine distance.

Messages keep only their vector and scope here (``memory_vectors``): their text and recall
windows are read from ``memory_messages`` in the same database, so nothing is copied."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fm_lab.memory.embedders import Embedder, Vectors, check_stamp
from fm_lab.memory.history import COLUMNS, StoredMessage, from_row
from fm_lab.memory.sql import first, transaction

if TYPE_CHECKING:
    from fm_lab.memory.vectors import Scope
    from fm_lab.store.base import SqlStore

REGISTRY = "vector_tables"
TABLE = "memory_vectors"
_KNOWN_CHUNK = 10_000  # ids per lookup query
HNSW_MAX_DIM = 2000  # pgvector indexes ``vector`` columns up to 2,000 dimensions
_REGISTRY_DDL = (f"create table if not exists {REGISTRY} (name text primary key, "
                 "embedder text not null, dim integer not null, "
                 "created_at timestamptz not null default now())")


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(vector: Vectors) -> str:
    """One vector in pgvector's text form (each float32 exactly)."""
    return "[" + ",".join(map(repr, vector.tolist())) + "]"


def table_exists(con: Any, name: str) -> bool:
    """Whether table ``name`` is visible on the connection's search path."""
    row = first(con.execute("select to_regclass(?) is not null", [ident(name)]))
    return bool(row and row[0])


def open_vector_table(store: SqlStore, name: str, embedder: Embedder, columns: str,
                      indexes: Sequence[str] = (), where: str | None = None) -> None:
    """Create table ``name`` (``columns`` plus ``embedding vector(dim)`` and an HNSW cosine
    index) for ``embedder`` unless it exists; an existing one must have been made by the same
    embedder (else :class:`~fm_lab.memory.embedders.EmbedderMismatchError`). ``indexes``
    are further indexes: what follows ``create index ... on <table>``, e.g. ``"(doc_id)"``
    or ``"using gin (tsv)"``."""
    quoted = ident(name)
    with store.connection() as con, transaction(con):
        con.execute("select pg_advisory_xact_lock(hashtext(?))", [f"fm_lab.vectors:{name}"])
        con.execute(_REGISTRY_DDL)
        row = first(con.execute(f"select embedder, dim from {REGISTRY} where name = ?",
                                [name]))
        if row is not None and table_exists(con, name):
            check_stamp(str(row[0]), str(row[1]), embedder, where or f"{store.path} {name}")
            return
        con.execute(f"create table if not exists {quoted} ({columns}, "
                    f"embedding vector({int(embedder.dim)}))")
        for number, index in enumerate(indexes):
            con.execute(f"create index if not exists {ident(f'{name}_{number}')} "
                        f"on {quoted} {index}")
        if embedder.dim <= HNSW_MAX_DIM:
            con.execute(f"create index if not exists {ident(f'{name}_embedding')} on {quoted} "
                        "using hnsw (embedding vector_cosine_ops)")
        con.execute(f"insert into {REGISTRY} (name, embedder, dim) values (?, ?, ?) "
                    "on conflict (name) do update set embedder = excluded.embedder, "
                    "dim = excluded.dim", [name, embedder.name, embedder.dim])


def drop_vector_table(store: SqlStore, name: str) -> None:
    """Drop table ``name`` and its stamp (nothing if it does not exist)."""
    with store.connection() as con, transaction(con):
        con.execute(f"drop table if exists {ident(name)}")
        if table_exists(con, REGISTRY):
            con.execute(f"delete from {REGISTRY} where name = ?", [name])


@contextlib.contextmanager
def vector_search(con: Any, limit: int) -> Iterator[Any]:
    """A transaction in which an HNSW scan looks at ``limit`` candidates at least and, filtered
    by a ``where``, keeps going until it has ``limit`` rows, in distance order (pgvector's
    iterative scan, from 0.8; older versions may return fewer rows under a filter)."""
    with transaction(con):
        row = first(con.execute("select extversion from pg_extension where extname = 'vector'"))
        if row is not None and _version(str(row[0])) >= (0, 8):
            con.execute("set local hnsw.iterative_scan = strict_order")
        con.execute(f"set local hnsw.ef_search = {min(max(40, int(limit)), 1000)}")
        yield con


def _version(text: str) -> tuple[int, ...]:
    """``"0.8.1"`` as ``(0, 8, 1)`` (non-numeric parts count as 0)."""
    return tuple(int(part) if part.isdigit() else 0 for part in text.split("."))


def nearest(con: Any, table: str, vector: Vectors, where: str, params: Sequence[Any],
            columns: str, limit: int) -> list[tuple[Any, ...]]:
    """``columns`` of the ``limit`` rows of ``table`` matching ``where`` nearest to ``vector``
    (cosine), nearest first, with ``distance`` last."""
    with vector_search(con, limit):
        return list(con.execute(
            f"select {columns}, embedding <=> ?::vector as distance from {ident(table)} "
            f"where embedding is not null and ({where}) order by distance limit ?",
            [literal(vector.reshape(-1)), *params, int(limit)]).fetchall())


class PgMessageVectors:
    """Message vectors in the store's ``memory_vectors`` table, written by one embedder."""

    backend = "pgvector"

    def __init__(self, store: SqlStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder
        self._ready = False

    def check(self) -> None:
        """Create the table on first use; refuse another embedder's table."""
        if not self._ready:
            open_vector_table(
                self.store, TABLE, self.embedder,
                "message_id text primary key, thread_id text not null, resource_id text, "
                "sequence bigint not null",
                indexes=("(thread_id, sequence)", "(resource_id)"),
                where=f"the message vectors of {self.store.path}")
            self._ready = True

    def add(self, stored: Sequence[StoredMessage], vectors: Vectors) -> None:
        """Add the stored messages; ``vectors`` has one row per message with text (in order);
        a message without text gets no vector (it still shows in recall windows)."""
        if not stored:
            return
        self.check()
        rows, taken = [], iter(vectors)
        for s in stored:
            vector = literal(next(taken)) if s.text.strip() else None
            rows.append((s.message_id, s.thread_id, s.resource_id, s.sequence, vector))
        with self.store.connection() as con:
            con.executemany(
                f"insert into {TABLE} (message_id, thread_id, resource_id, sequence, embedding) "
                "values (?, ?, ?, ?, ?::vector) on conflict (message_id) do update set "
                "embedding = excluded.embedding", rows)

    def search(self, vector: Vectors, *, top_k: int, scope: Scope, thread_id: str,
               resource_id: str | None, live_from: int | None) -> list[tuple[str, int]]:
        """The ``(thread_id, sequence)`` of the ``top_k`` nearest messages in scope, leaving
        out this thread's messages from sequence ``live_from`` on (already in context)."""
        if scope == "resource":
            if resource_id is None:
                raise ValueError("semantic recall with scope='resource' needs a resource_id")
            where, params = "resource_id = ?", list[Any]([resource_id])
            if live_from is not None:
                where += " and not (thread_id = ? and sequence >= ?)"
                params += [thread_id, live_from]
        elif scope == "thread":
            where, params = "thread_id = ?", list[Any]([thread_id])
            if live_from is not None:
                where += " and sequence < ?"
                params.append(live_from)
        else:
            raise ValueError(f"scope must be 'thread' or 'resource', got {scope!r}")
        self.check()
        with self.store.connection() as con:
            rows = nearest(con, TABLE, vector, where, params, "thread_id, sequence", top_k)
        return [(str(r[0]), int(r[1])) for r in rows]

    def windows(self, hits: Iterable[tuple[str, int]], before: int,
                after: int) -> list[StoredMessage]:
        """Each hit with ``before`` earlier and ``after`` later messages of its own thread
        (from ``memory_messages``), in one query; distinct, in time order."""
        pairs = sorted(set(hits))
        if not pairs:
            return []
        where = " or ".join("(thread_id = ? and sequence between ? and ?)" for _ in pairs)
        params = [v for t, s in pairs for v in (t, int(s) - before, int(s) + after)]
        with self.store.connection() as con:
            rows = con.execute(f"select {COLUMNS} from memory_messages where {where} "
                               "order by created_at, thread_id, sequence", params).fetchall()
        return [from_row(r) for r in rows]

    def delete_thread(self, thread_id: str) -> None:
        """Remove a thread's vectors."""
        delete_thread_in(self.store, thread_id)

    def drop(self) -> None:
        """Drop the table (a reindex makes it again, for this embedder)."""
        drop_vector_table(self.store, TABLE)
        self._ready = False

    def optimize(self) -> None:
        """Refresh the planner's statistics (the HNSW index is kept up to date on insert)."""
        self.check()
        with self.store.connection() as con:
            con.execute(f"analyze {TABLE}")

    def count(self) -> int:
        """Messages in the table (with or without a vector)."""
        self.check()
        with self.store.connection() as con:
            row = first(con.execute(f"select count(*) from {TABLE}"))
        return int(row[0]) if row else 0


    def known(self, message_ids: Sequence[str]) -> set[str]:
        """The ids among ``message_ids`` that have a row here (none when the table is not
        made yet)."""
        found: set[str] = set()
        with self.store.connection() as con:
            if not message_ids or not table_exists(con, TABLE):
                return found
            for start in range(0, len(message_ids), _KNOWN_CHUNK):
                part = list(message_ids[start:start + _KNOWN_CHUNK])
                found.update(str(r[0]) for r in con.execute(
                    f"select message_id from {TABLE} where message_id = any(?)",
                    [part]).fetchall())
        return found


def delete_thread_in(store: SqlStore, thread_id: str) -> None:
    """Remove a thread's rows from ``memory_vectors`` (whatever embedder wrote them)."""
    with store.connection() as con:
        if table_exists(con, TABLE):
            con.execute(f"delete from {TABLE} where thread_id = ?", [thread_id])
