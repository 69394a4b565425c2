"""Knowledge-base chunks in the store's own table ``kb__<name>`` (pgvector): cosine search on
an HNSW index, PostgreSQL full-text search (an ``english`` tsvector column with a GIN index;
any query word may match, ranked by ``ts_rank``) and hybrid search fused by reciprocal rank,
as the LanceDB table does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fm_lab.kb.chunks import HITS, PREFIX, RRF_K, Chunk, Mode
from fm_lab.memory.embedders import Embedder, Vectors
from fm_lab.memory.pg_vectors import (
    REGISTRY,
    drop_vector_table,
    ident,
    literal,
    nearest,
    open_vector_table,
    table_exists,
    vector_search,
)
from fm_lab.memory.sql import first, transaction

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.base import SqlStore

_COLUMNS = ("id text primary key, doc_id text not null, source text, chunk integer, "
            "heading text, text text, metadata text, created_at double precision, "
            "tsv tsvector generated always as (to_tsvector('english', text)) stored")
_INDEXES = ("(doc_id)", "using gin (tsv)")
_FIELDS = "text, source, heading, chunk, doc_id, metadata"
# any word of the query may match (plainto_tsquery ANDs its stemmed words; re-read as
# 'simple', which leaves the stems as they are), as a BM25 index ranks
_QUERY = "to_tsquery('simple', replace(plainto_tsquery('english', ?)::text, ' & ', ' | '))"


class PgChunks:
    """The chunk table of one knowledge base in a store that keeps vectors."""

    def __init__(self, store: SqlStore, name: str, embedder: Embedder) -> None:
        self.store = store
        self.name = name
        self.embedder = embedder
        self.table = ident(PREFIX + name)

    def count(self) -> int:
        """Number of chunks."""
        with self.store.connection() as con:
            row = first(con.execute(f"select count(*) from {self.table}"))
        return int(row[0]) if row else 0

    def replace_document(self, doc_id: str, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Upsert ``chunks`` by id and delete ``doc_id``'s other chunks, in one transaction."""
        with self.store.connection() as con, transaction(con):
            if chunks:
                self._insert(con, chunks, vectors, "do update set doc_id = excluded.doc_id, "
                             "source = excluded.source, chunk = excluded.chunk, heading = "
                             "excluded.heading, text = excluded.text, metadata = "
                             "excluded.metadata, created_at = excluded.created_at, "
                             "embedding = excluded.embedding")
                con.execute(f"delete from {self.table} where doc_id = ? and id <> all(?)",
                            [doc_id, [c.id for c in chunks]])
            else:
                con.execute(f"delete from {self.table} where doc_id = ?", [doc_id])

    def add(self, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Insert the ``chunks`` whose ids the table lacks (one vector each)."""
        if chunks:
            with self.store.connection() as con, transaction(con):
                self._insert(con, chunks, vectors, "do nothing")

    def _insert(self, con: Any, chunks: Sequence[Chunk], vectors: Vectors,
                on_conflict: str) -> None:
        con.executemany(
            f"insert into {self.table} (id, doc_id, source, chunk, heading, text, metadata, "
            "created_at, embedding) values (?, ?, ?, ?, ?, ?, ?, ?, ?::vector) "
            f"on conflict (id) {on_conflict}",
            [(c.id, c.doc_id, c.source, c.chunk, c.heading, c.text, c.metadata, c.created_at,
              literal(v)) for c, v in zip(chunks, vectors, strict=True)])

    def delete(self, where: str) -> None:
        """Delete the chunks matching ``where``."""
        with self.store.connection() as con:
            con.execute(f"delete from {self.table} where {where}")

    def optimize(self) -> None:
        """Refresh the planner's statistics (PostgreSQL keeps the indexes up to date)."""
        with self.store.connection() as con:
            con.execute(f"analyze {self.table}")

    def search(self, query: str, k: int, where: str | None, mode: Mode) -> pd.DataFrame:
        """The ``k`` best chunks (see :class:`~fm_lab.kb.chunks.ChunkTable`)."""
        import pandas as pd

        cond = where or "true"
        with self.store.connection() as con:
            if mode == "vector":
                found = nearest(con, PREFIX + self.name, self.embedder.embed([query])[0], cond,
                                [], _FIELDS, k)
                rows = [(r[0], 1.0 - float(r[-1]), *r[1:-1]) for r in found]
            elif mode == "fts":
                rows = con.execute(
                    f"select text, ts_rank(tsv, q) as score, source, heading, chunk, doc_id, "
                    f"metadata from {self.table}, {_QUERY} as q where tsv @@ q and ({cond}) "
                    "order by score desc, id limit ?", [query, k]).fetchall()
            else:
                rows = self._hybrid(con, query, k, cond)
        return pd.DataFrame(rows, columns=HITS)

    def _hybrid(self, con: Any, query: str, k: int, cond: str) -> list[tuple[Any, ...]]:
        """The ``k`` best of the vector and the full-text ranking (``k`` each), fused by
        reciprocal rank."""
        vector = literal(self.embedder.embed([query])[0])
        with vector_search(con, k):
            return list(con.execute(
                f"with v as (select id, row_number() over (order by embedding <=> ?::vector) "
                f"as r from {self.table} where embedding is not null and ({cond}) "
                "order by embedding <=> ?::vector limit ?), "
                f"f as (select id, row_number() over (order by ts_rank(tsv, q) desc, id) as r "
                f"from {self.table}, {_QUERY} as q where tsv @@ q and ({cond}) "
                "order by ts_rank(tsv, q) desc, id limit ?), "
                "fused as (select coalesce(v.id, f.id) as id, "
                f"coalesce(1.0 / ({RRF_K} + v.r), 0) + coalesce(1.0 / ({RRF_K} + f.r), 0) "
                "as score from v full join f on f.id = v.id) "
                f"select c.text, fused.score::float8, c.source, c.heading, c.chunk, c.doc_id, "
                f"c.metadata from fused join {self.table} c on c.id = fused.id "
                "order by fused.score desc, c.id limit ?",
                [vector, vector, k, query, k, k]).fetchall())

    def rows(self) -> pd.DataFrame:
        """``doc_id``, ``source`` and ``metadata`` of every chunk."""
        return self.store.sql(f"select doc_id, source, metadata from {self.table}")


def names(store: SqlStore) -> list[str]:
    """Knowledge bases kept in the store's tables."""
    with store.connection() as con:
        if not table_exists(con, REGISTRY):
            return []
        rows = con.execute(f"select name from {REGISTRY} where starts_with(name, ?) "
                           "order by name", [PREFIX]).fetchall()
    return [str(r[0])[len(PREFIX):] for r in rows]


def stamp(store: SqlStore, name: str) -> tuple[str, int] | None:
    """``(embedder name, dim)`` knowledge base ``name`` was made with (None: no such kb)."""
    with store.connection() as con:
        if not table_exists(con, REGISTRY):
            return None
        row = first(con.execute(f"select embedder, dim from {REGISTRY} where name = ?",
                                [PREFIX + name]))
    return (str(row[0]), int(row[1])) if row else None


def open_chunks(store: SqlStore, name: str, embedder: Embedder, where: str) -> PgChunks:
    """Knowledge base ``name``'s table (created for ``embedder`` if missing; an existing one
    must have been made by it)."""
    open_vector_table(store, PREFIX + name, embedder, _COLUMNS, _INDEXES, where)
    return PgChunks(store, name, embedder)


def drop(store: SqlStore, name: str) -> bool:
    """Drop knowledge base ``name``; False if it was not there."""
    if stamp(store, name) is None:
        return False
    drop_vector_table(store, PREFIX + name)
    return True
