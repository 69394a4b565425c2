"""A knowledge base: chunks of documents with metadata in a vector table (LanceDB, or the
store's own with pgvector: :mod:`fm_lab.memory.vector_backend` decides), searched by vector,
by full text or both (hybrid, reciprocal-rank fusion). Text, sources and metadata are stored
(and embedded) with secrets masked, as spans are."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.kb import lance_chunks, pg_chunks
from fm_lab.kb.chunking import chunk_text, markdown_sections
from fm_lab.kb.chunks import HITS, PREFIX, Chunk, ChunkTable, Mode
from fm_lab.memory.embedders import Embedder, check_stamp, default_embedder, embedder_from_stamp
from fm_lab.memory.lance import sql_str
from fm_lab.memory.vector_backend import Backend, VectorChoice, choose, folder_for
from fm_lab.tracing.redact import redactor

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.agents.tools import Tool
    from fm_lab.store.base import RunStore, SqlStore

Filter = Mapping[str, Any] | str | None
__all__ = ["PREFIX", "KnowledgeBase", "KnowledgeBaseError", "Mode", "create", "drop", "names",
           "open", "where_clause"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
FIXED = frozenset({"id", "doc_id", "source", "chunk", "heading"})
Scalar = str | int | float | bool | None


class KnowledgeBaseError(ValueError):
    """A knowledge base that is missing, exists already, or was asked something invalid."""


def _store(store: RunStore | str | Path | None) -> SqlStore:
    """The store a knowledge base belongs to: ``store`` (a store, a path or a URL), else the
    default store."""
    from fm_lab.store.base import sql_store

    if store is None:
        from fm_lab.store.default import default_store

        return sql_store(default_store(), "knowledge bases")
    if isinstance(store, str | Path):
        from fm_lab.store.urls import open_store

        return sql_store(open_store(store), "knowledge bases")
    return sql_store(store, "knowledge bases")


@contextlib.contextmanager
def _for_a_call(store: RunStore | str | Path | None) -> Iterator[SqlStore]:
    """:func:`_store` for one call: a store opened here from a path or URL is closed after it
    (a server store's connection pool would otherwise outlive the call)."""
    target = _store(store)
    try:
        yield target
    finally:
        if isinstance(store, str | Path):
            target.close()


def _where(store: SqlStore, backend: Backend) -> str:
    """Where a store's knowledge bases live, for messages."""
    return str(folder_for(store)) if backend == "lancedb" else f"the tables of {store.path}"


def _table_name(name: str) -> str:
    if not _NAME.match(name):
        raise KnowledgeBaseError(f"knowledge base name {name!r}: use letters, digits, '_' and "
                                 "'-' (up to 64, starting with a letter or digit)")
    return PREFIX + name


def _canonical(metadata: Mapping[str, Any] | None) -> str:
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str | int | float | bool | None):
            raise KnowledgeBaseError(f"metadata {key!r}: values must be str, int, float, bool "
                                     f"or None, got {type(value).__name__}")
    return json.dumps(dict(metadata or {}), sort_keys=True, separators=(",", ":"))


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def where_clause(filter: Filter) -> str | None:
    """A filter from ``{"source": "a.md", "lang": "en"}`` (fixed columns compare
    directly, other keys match the chunk's metadata; a list value means any of) or SQL."""
    if filter is None or isinstance(filter, str):
        return filter or None
    parts = []
    for key, wanted in filter.items():
        options = wanted if isinstance(wanted, list | tuple | set) else [wanted]
        alternatives = []
        for value in options:
            if key in FIXED:
                literal = sql_str(value) if isinstance(value, str) else str(int(value))
                alternatives.append(f"{key} = {literal}")
            else:
                pair = _like(json.dumps({key: value}, separators=(",", ":"))[1:-1])
                alternatives.extend(f"metadata like {sql_str(pattern)}" for pattern in (
                    f"%{{{pair},%", f"%,{pair},%", f"%,{pair}}}%", f"%{{{pair}}}%"))
        parts.append("(" + " or ".join(alternatives) + ")")
    return " and ".join(parts) or None


class KnowledgeBase:
    """Documents chunked and embedded in table ``kb__<name>`` (of the store's LanceDB folder,
    or of the store itself with pgvector). Use :func:`fm_lab.kb.create` /
    :func:`fm_lab.kb.open`."""

    def __init__(self, name: str, chunks: ChunkTable, *, chunk_size: int = 800,
                 overlap: int = 100) -> None:
        self.name = name
        self.chunks = chunks
        self.embedder = chunks.embedder
        self.chunk_size = chunk_size
        self.overlap = overlap

    def __repr__(self) -> str:
        return f"KnowledgeBase({self.name!r}, chunks={self.count()})"

    def count(self) -> int:
        """Number of chunks."""
        return self.chunks.count()

    # ---- ingest --------------------------------------------------------------------------
    def _add(self, doc_id: str, source: str, pieces: list[tuple[str, str]],
             metadata: Mapping[str, Any] | None) -> int:
        """Store ``(heading, text)`` chunks of one document (cut from masked text), replacing
        its earlier chunks; the rest is masked here."""
        redact = redactor()
        meta = _canonical(redact(dict(metadata or {})))
        doc_id, source = redact(doc_id), redact(source)
        pieces = [(h, t) for h, t in pieces if t.strip()]
        now = time.time()
        chunks = [Chunk(hashlib.sha256(f"{doc_id}\0{i}\0{h}\0{t}".encode()).hexdigest()[:24],
                        doc_id, source, i, h, t, meta, now) for i, (h, t) in enumerate(pieces)]
        vectors = (self.embedder.embed([f"{h}\n{t}" if h else t for h, t in pieces]) if pieces
                   else _empty(self.embedder))
        self.chunks.replace_document(doc_id, chunks, vectors)
        return len(chunks)

    def optimize(self) -> None:
        """Compact the table and bring its indexes up to date (after bulk ingests)."""
        self.chunks.optimize()

    @staticmethod
    def _doc_id(source: str, doc_id: str | None) -> str:
        return doc_id or hashlib.sha256(source.encode()).hexdigest()[:16]

    def add_text(self, text: str, *, source: str, metadata: Mapping[str, Any] | None = None,
                 doc_id: str | None = None) -> int:
        """Chunk and add plain text (PDF-extracted text too); adding the same ``source`` (or
        ``doc_id``) again replaces it. Returns the number of chunks."""
        chunks = chunk_text(redactor().text(text), size=self.chunk_size, overlap=self.overlap)
        return self._add(self._doc_id(source, doc_id), source, [("", c) for c in chunks],
                         metadata)

    def add_markdown(self, text: str, *, source: str,
                     metadata: Mapping[str, Any] | None = None, doc_id: str | None = None) -> int:
        """Add Markdown split by headings; each chunk keeps its heading path."""
        pieces = [(heading, chunk) for heading, body in markdown_sections(redactor().text(text))
                  for chunk in chunk_text(body, size=self.chunk_size, overlap=self.overlap)]
        return self._add(self._doc_id(source, doc_id), source, pieces, metadata)

    def add_pages(self, pages: Iterable[str], *, source: str,
                  metadata: Mapping[str, Any] | None = None) -> int:
        """Add text extracted from a PDF (one string per page); chunks carry ``page``."""
        total = 0
        for number, page in enumerate(pages, start=1):
            total += self.add_text(page, source=source, doc_id=f"{source}#page={number}",
                                   metadata={**(metadata or {}), "page": number})
        return total

    def add_pdf(self, path: str | Path, *, metadata: Mapping[str, Any] | None = None) -> int:
        """Extract a PDF's text with ``pypdf`` (extra ``pdf``) and add it page by page."""
        try:
            from pypdf import PdfReader
        except ImportError as exc:
            raise ImportError("add_pdf needs pypdf: pip install 'fm_lab[pdf]', or extract "
                              "the text yourself and use add_pages") from exc
        reader = PdfReader(str(path))
        return self.add_pages([page.extract_text() or "" for page in reader.pages],
                              source=Path(path).name, metadata=metadata)

    def add_file(self, path: str | Path, *, metadata: Mapping[str, Any] | None = None) -> int:
        """Add a ``.md``/``.markdown``, ``.txt`` or ``.pdf`` file (source = file name)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".pdf":
            return self.add_pdf(path, metadata=metadata)
        if suffix not in (".md", ".markdown", ".txt"):
            raise KnowledgeBaseError(f"{path}: add_file reads .md, .markdown, .txt and .pdf")
        text = path.read_text(encoding="utf-8")
        add = self.add_text if suffix == ".txt" else self.add_markdown
        return add(text, source=path.name, metadata=metadata)

    def add_dataframe(self, df: pd.DataFrame, *, text_column: str,
                      metadata_columns: Iterable[str] | None = None,
                      id_column: str | None = None, source: str = "dataframe") -> int:
        """Add one document per row: ``text_column`` is chunked, ``metadata_columns`` (default
        every other column with scalar values) become metadata, ``id_column`` names rows."""
        if text_column not in df.columns:
            raise KnowledgeBaseError(f"no column {text_column!r} in the DataFrame "
                                     f"(columns: {list(df.columns)})")
        columns = (list(metadata_columns) if metadata_columns is not None
                   else [c for c in df.columns if c not in (text_column, id_column)])
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise KnowledgeBaseError(f"metadata columns {missing} are not in the DataFrame")
        total = 0
        for index, row in df.iterrows():
            key = row[id_column] if id_column else index
            meta = {c: _scalar(row[c]) for c in columns}
            total += self.add_text(str(row[text_column]), source=source,
                                   doc_id=f"{source}#{key}", metadata=meta)
        return total

    # ---- search --------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, *, filter: Filter = None,
               mode: Mode = "hybrid") -> pd.DataFrame:
        """The ``k`` best chunks for ``query`` as a DataFrame (text, score, source, heading,
        chunk, doc_id, metadata). ``mode``: "hybrid" (vector + full text, fused by
        reciprocal rank), "vector" or "fts"; ``filter``: see :func:`where_clause`."""
        import pandas as pd

        if k < 1:
            raise KnowledgeBaseError(f"k must be at least 1, got {k}")
        if mode not in ("hybrid", "vector", "fts"):
            raise KnowledgeBaseError(f"mode must be 'hybrid', 'vector' or 'fts', got {mode!r}")
        if not self.count():
            return pd.DataFrame(columns=HITS)
        found = self.chunks.search(query, k, where_clause(filter), mode)
        found["score"] = found["score"].astype(float)
        found["metadata"] = [json.loads(m) for m in found["metadata"]]
        return found[HITS].reset_index(drop=True)

    def documents(self) -> pd.DataFrame:
        """One row per document: source, doc_id, chunks, metadata."""
        import pandas as pd

        if not self.count():
            return pd.DataFrame(columns=["doc_id", "source", "chunks", "metadata"])
        df = self.chunks.rows()
        out = df.groupby(["doc_id", "source", "metadata"], as_index=False).size()
        out = out.rename(columns={"size": "chunks"})
        out["metadata"] = [json.loads(m) for m in out["metadata"]]
        result: pd.DataFrame = out[["doc_id", "source", "chunks", "metadata"]]
        return result

    def delete(self, filter: Filter) -> None:
        """Delete the chunks matching ``filter`` (e.g. ``{"source": "old.md"}``)."""
        where = where_clause(filter)
        if not where:
            raise KnowledgeBaseError("delete needs a filter (use fm_lab.kb.drop to remove all)")
        self.chunks.delete(where)

    def as_tool(self, name: str = "kb_search", k: int = 5) -> Tool:
        """A tool an agent can call to search this knowledge base."""
        from fm_lab.agents.tools import tool

        kb = self

        def kb_search(query: str, k: int = k) -> list[dict[str, Any]]:
            hits = kb.search(query, k=k)
            return [{"text": r.text, "source": r.source, "heading": r.heading,
                     "score": round(float(score), 4)}
                    for r, score in zip(hits.itertuples(), hits["score"].tolist(), strict=True)]

        made: Tool = tool(kb_search, name=name, description=(
            f"Search the knowledge base {self.name!r}; returns the best passages with their "
            "source."))
        return made


def _scalar(value: Any) -> Scalar:
    if hasattr(value, "item"):
        value = value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value if value == value else None  # NaN -> None
    return str(value)


def _empty(embedder: Embedder) -> Any:
    import numpy as np

    return np.zeros((0, embedder.dim), np.float32)


def _stamped(store: SqlStore, backend: Backend, name: str) -> tuple[str, int, Any] | None:
    """``(embedder name, dim, LanceDB table or None)`` of knowledge base ``name`` (None when
    there is no such knowledge base)."""
    if backend == "pgvector":
        found = pg_chunks.stamp(store, name)
        return None if found is None else (*found, None)
    table = lance_chunks.open_table(folder_for(store), name)
    if table is None:
        return None
    stamp, embedder = lance_chunks.stamped_embedder(table)
    return stamp, embedder.dim if embedder is not None else 0, table


def create(name: str, *, store: RunStore | str | Path | None = None,
           embedder: Embedder | None = None, chunk_size: int = 800, overlap: int = 100,
           exist_ok: bool = False, vectors: VectorChoice = "auto") -> KnowledgeBase:
    """Create knowledge base ``name`` for the store (default embedder:
    :func:`~fm_lab.memory.embedders.default_embedder`); ``vectors`` chooses where its table
    lives as for :class:`~fm_lab.memory.Memory` ("auto": pgvector when the store has it,
    else LanceDB beside a DuckDB file or at ``$FM_LAB_VECTORS``).

    >>> kb = create("docs", store=Store(":memory:"))  # doctest: +SKIP
    """
    _table_name(name)
    target = _store(store)
    backend = choose(target, vectors)
    if _stamped(target, backend, name) is not None:
        if not exist_ok:
            raise KnowledgeBaseError(f"knowledge base {name!r} exists in "
                                     f"{_where(target, backend)}; use fm_lab.kb.open "
                                     "(or create(..., exist_ok=True))")
        return open(name, store=target, embedder=embedder, chunk_size=chunk_size,
                    overlap=overlap, vectors=vectors)
    chosen = embedder or default_embedder()
    chunk_text("", size=chunk_size, overlap=overlap)  # validates the settings
    chunks: ChunkTable = (
        pg_chunks.open_chunks(target, name, chosen, f"knowledge base {name!r}")
        if backend == "pgvector" else lance_chunks.create(folder_for(target), name, chosen))
    return KnowledgeBase(name, chunks, chunk_size=chunk_size, overlap=overlap)


def open(name: str, *, store: RunStore | str | Path | None = None,
         embedder: Embedder | None = None, chunk_size: int = 800,
         overlap: int = 100, vectors: VectorChoice = "auto") -> KnowledgeBase:
    """Open knowledge base ``name``; ``embedder`` must match the one it was built with
    (hashing and litellm embedders are recognised from the table)."""
    _table_name(name)
    target = _store(store)
    backend = choose(target, vectors)
    found = _stamped(target, backend, name)
    if found is None:
        raise KnowledgeBaseError(f"no knowledge base {name!r} in {_where(target, backend)}; "
                                 "fm_lab.kb.names() lists them, fm_lab.kb.create makes one")
    stamp, dim, table = found
    where = f"knowledge base {name!r}"
    chosen = embedder or embedder_from_stamp(stamp, dim)
    if chosen is None:
        raise KnowledgeBaseError(f"{where} was built with embedder {stamp!r}: pass that "
                                 "embedder to fm_lab.kb.open(..., embedder=...)")
    chunks: ChunkTable
    if backend == "pgvector":
        check_stamp(stamp, str(dim), chosen, where)
        chunks = pg_chunks.PgChunks(target, name, chosen)
    else:
        chunks = lance_chunks.open_chunks(table, chosen, where)
    return KnowledgeBase(name, chunks, chunk_size=chunk_size, overlap=overlap)


def names(*, store: RunStore | str | Path | None = None,
          vectors: VectorChoice = "auto") -> list[str]:
    """The knowledge bases of the store."""
    with _for_a_call(store) as target:
        if choose(target, vectors) == "pgvector":
            return pg_chunks.names(target)
        return lance_chunks.names(folder_for(target))


def drop(name: str, *, store: RunStore | str | Path | None = None,
         vectors: VectorChoice = "auto") -> None:
    """Delete knowledge base ``name`` and its chunks."""
    _table_name(name)
    with _for_a_call(store) as target:
        dropped = (pg_chunks.drop(target, name) if choose(target, vectors) == "pgvector"
                   else lance_chunks.drop(folder_for(target), name))
    if not dropped:
        raise KnowledgeBaseError(f"no knowledge base {name!r} to drop")
