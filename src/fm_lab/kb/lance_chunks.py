"""Knowledge-base chunks in a LanceDB table ``kb__<name>``: vector search, LanceDB's native
full-text index (rebuilt after ingests) and hybrid search fused by reciprocal rank."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.kb.chunks import COLUMNS, HITS, PREFIX, RRF_K, Chunk, Mode
from fm_lab.memory.embedders import Embedder, Vectors, embedder_from_stamp
from fm_lab.memory.lance import (
    DIM_KEY,
    EMBEDDER_KEY,
    check_embedder,
    connect,
    sql_str,
    table_names,
    vector_schema,
)

if TYPE_CHECKING:
    import pandas as pd

OPTIMIZE_EVERY = 50


class LanceChunks:
    """The chunk table of one knowledge base in a LanceDB folder."""

    def __init__(self, table: Any, embedder: Embedder) -> None:
        self.table = table
        self.embedder = embedder
        self._writes = 0

    def count(self) -> int:
        """Number of chunks."""
        return int(self.table.count_rows())

    def replace_document(self, doc_id: str, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Upsert ``chunks`` by id and delete ``doc_id``'s other chunks."""
        if chunks:
            (self.table.merge_insert("id").when_matched_update_all()
             .when_not_matched_insert_all().execute(self._arrow(chunks, vectors)))
        stale = f"doc_id = {sql_str(doc_id)}"
        if chunks:
            stale += " and id not in (" + ", ".join(sql_str(c.id) for c in chunks) + ")"
        self.table.delete(stale)
        self._index_text()

    def add(self, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Insert the ``chunks`` whose ids the table lacks (one vector each)."""
        if chunks:
            (self.table.merge_insert("id").when_not_matched_insert_all()
             .execute(self._arrow(chunks, vectors)))
            self._index_text()

    def _arrow(self, chunks: Sequence[Chunk], vectors: Vectors) -> Any:
        import pyarrow as pa

        return pa.table({
            **{name: [getattr(c, name) for c in chunks] for name in COLUMNS},
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(vectors.reshape(-1), pa.float32()), self.embedder.dim),
        }, schema=self.table.schema)

    def delete(self, where: str) -> None:
        """Delete the chunks matching ``where``."""
        self.table.delete(where)
        self._index_text()

    def _index_text(self) -> None:
        """Create the full-text index on the first ingest; later rows are searched unindexed
        (LanceDB scans them too) until :meth:`optimize` folds them in, every 50 writes."""
        from lancedb.index import FTS

        self._writes += 1
        if not any(i.name == "text_idx" for i in self.table.list_indices()):
            if self.count():
                self.table.create_index("text", config=FTS(), replace=True)
        elif self._writes % OPTIMIZE_EVERY == 0:
            self.optimize()

    def optimize(self) -> None:
        """Compact the table and bring its full-text index up to date."""
        self.table.optimize()

    def search(self, query: str, k: int, where: str | None, mode: Mode) -> pd.DataFrame:
        """The ``k`` best chunks (see :class:`~fm_lab.kb.chunks.ChunkTable`)."""
        if mode == "fts":
            builder = self.table.search(query, query_type="fts", fts_columns="text")
            score = "_score"
        elif mode == "vector":
            builder = (self.table.search(self.embedder.embed([query])[0],
                                         vector_column_name="vector").distance_type("cosine"))
            score = "_distance"
        else:
            from lancedb.rerankers import RRFReranker

            builder = (self.table.search(query_type="hybrid", vector_column_name="vector",
                                         fts_columns="text")
                       .vector(self.embedder.embed([query])[0]).text(query)
                       .rerank(RRFReranker(K=RRF_K)))
            score = "_relevance_score"
        if where:
            builder = builder.where(where, prefilter=True)
        found = builder.limit(k).to_pandas()
        found["score"] = 1.0 - found[score] if score == "_distance" else found[score]
        hits: pd.DataFrame = found[HITS]
        return hits

    def rows(self) -> pd.DataFrame:
        """``doc_id``, ``source`` and ``metadata`` of every chunk."""
        frame: pd.DataFrame = (self.table.search().select(["doc_id", "source", "metadata"])
                               .limit(max(self.count(), 1)).to_pandas())
        return frame


def _schema(embedder: Embedder) -> Any:
    import pyarrow as pa

    return vector_schema([
        ("id", pa.string()), ("doc_id", pa.string()), ("source", pa.string()),
        ("chunk", pa.int32()), ("heading", pa.string()), ("text", pa.string()),
        ("metadata", pa.string()), ("created_at", pa.float64())], embedder)


def stamped_embedder(table: Any) -> tuple[str, Embedder | None]:
    """The embedder name a table was stamped with, and that embedder when it can be rebuilt
    from the stamp alone."""
    meta = table.schema.metadata or {}
    stamped = meta.get(EMBEDDER_KEY, b"").decode()
    return stamped, embedder_from_stamp(stamped, int(meta.get(DIM_KEY, b"0").decode() or 0))


def names(path: Path) -> list[str]:
    """Knowledge bases in the LanceDB folder ``path``."""
    if not path.exists():
        return []
    return sorted(t[len(PREFIX):] for t in table_names(connect(path)) if t.startswith(PREFIX))


def create(path: Path, name: str, embedder: Embedder) -> LanceChunks:
    """A new chunk table for ``name`` in ``path``."""
    table = connect(path).create_table(PREFIX + name, schema=_schema(embedder))
    return LanceChunks(table, embedder)


def open_table(path: Path, name: str) -> Any:
    """The LanceDB table of knowledge base ``name`` (None if there is none)."""
    if name not in names(path):
        return None
    return connect(path).open_table(PREFIX + name)


def open_chunks(table: Any, embedder: Embedder, where: str) -> LanceChunks:
    """``table`` as a chunk table, after checking it was written by ``embedder``."""
    check_embedder(table, embedder, where)
    return LanceChunks(table, embedder)


def drop(path: Path, name: str) -> bool:
    """Drop knowledge base ``name`` from ``path``; False if it was not there."""
    if name not in names(path):
        return False
    connect(path).drop_table(PREFIX + name)
    return True
