"""A knowledge base: chunks of documents with metadata in a LanceDB table, searched by vector,
by full text (LanceDB's native FTS index) or both (hybrid, reciprocal-rank fusion). Text,
sources and metadata are stored (and embedded) with secrets masked, as spans are."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fm_lab.kb.chunking import chunk_text, markdown_sections
from fm_lab.memory.embedders import Embedder, default_embedder, embedder_from_stamp
from fm_lab.memory.lance import (
    DIM_KEY,
    EMBEDDER_KEY,
    check_embedder,
    connect,
    lance_path,
    sql_str,
    table_names,
    vector_schema,
)
from fm_lab.tracing.redact import redactor

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.agents.tools import Tool
    from fm_lab.store.base import RunStore

Mode = Literal["hybrid", "vector", "fts"]
Filter = Mapping[str, Any] | str | None
PREFIX = "kb__"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
COLUMNS = ("id", "doc_id", "source", "chunk", "heading", "text", "metadata", "created_at")
FIXED = frozenset({"id", "doc_id", "source", "chunk", "heading"})
Scalar = str | int | float | bool | None
OPTIMIZE_EVERY = 50


class KnowledgeBaseError(ValueError):
    """A knowledge base that is missing, exists already, or was asked something invalid."""


def _store(store: RunStore | str | Path | None) -> RunStore | str | Path:
    if store is not None:
        return store
    from fm_lab.store.default import default_store

    return default_store()


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
    """A LanceDB filter from ``{"source": "a.md", "lang": "en"}`` (fixed columns compare
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
    """Documents chunked and embedded in table ``kb__<name>`` of the store's LanceDB folder.
    Use :func:`fm_lab.kb.create` / :func:`fm_lab.kb.open`."""

    def __init__(self, name: str, table: Any, embedder: Embedder, *, chunk_size: int = 800,
                 overlap: int = 100) -> None:
        self.name = name
        self.table = table
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.overlap = overlap
        self._writes = 0

    def __repr__(self) -> str:
        return f"KnowledgeBase({self.name!r}, chunks={self.count()})"

    def count(self) -> int:
        """Number of chunks."""
        return int(self.table.count_rows())

    # ---- ingest --------------------------------------------------------------------------
    def _add(self, doc_id: str, source: str, pieces: list[tuple[str, str]],
             metadata: Mapping[str, Any] | None) -> int:
        """Store ``(heading, text)`` chunks of one document (cut from masked text), replacing
        its earlier chunks; the rest is masked here."""
        import pyarrow as pa

        redact = redactor()
        meta = _canonical(redact(dict(metadata or {})))
        doc_id, source = redact(doc_id), redact(source)
        pieces = [(h, t) for h, t in pieces if t.strip()]
        ids = [hashlib.sha256(f"{doc_id}\0{i}\0{h}\0{t}".encode()).hexdigest()[:24]
               for i, (h, t) in enumerate(pieces)]
        if pieces:
            vectors = self.embedder.embed([f"{h}\n{t}" if h else t for h, t in pieces])
            data = pa.table({
                "id": ids, "doc_id": [doc_id] * len(ids), "source": [source] * len(ids),
                "chunk": pa.array(range(len(ids)), pa.int32()),
                "heading": [h for h, _ in pieces], "text": [t for _, t in pieces],
                "metadata": [meta] * len(ids),
                "created_at": pa.array([time.time()] * len(ids), pa.float64()),
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors.reshape(-1), pa.float32()), self.embedder.dim),
            }, schema=self.table.schema)
            (self.table.merge_insert("id").when_matched_update_all()
             .when_not_matched_insert_all().execute(data))
        stale = f"doc_id = {sql_str(doc_id)}"
        if ids:
            stale += " and id not in (" + ", ".join(sql_str(i) for i in ids) + ")"
        self.table.delete(stale)
        self._index_text()
        return len(pieces)

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
        """Compact the table and bring its full-text index up to date (after bulk ingests)."""
        self.table.optimize()

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
        if not self.count():
            return pd.DataFrame(columns=["text", "score", "source", "heading", "chunk",
                                         "doc_id", "metadata"])
        where = where_clause(filter)
        if mode == "fts":
            builder = self.table.search(query, query_type="fts", fts_columns="text")
            score = "_score"
        elif mode == "vector":
            builder = (self.table.search(self.embedder.embed([query])[0],
                                         vector_column_name="vector").distance_type("cosine"))
            score = "_distance"
        elif mode == "hybrid":
            from lancedb.rerankers import RRFReranker

            builder = (self.table.search(query_type="hybrid", vector_column_name="vector",
                                         fts_columns="text")
                       .vector(self.embedder.embed([query])[0]).text(query)
                       .rerank(RRFReranker()))
            score = "_relevance_score"
        else:
            raise KnowledgeBaseError(f"mode must be 'hybrid', 'vector' or 'fts', got {mode!r}")
        if where:
            builder = builder.where(where, prefilter=True)
        found = builder.limit(k).to_pandas()
        scores = 1.0 - found[score] if score == "_distance" else found[score]
        return pd.DataFrame({
            "text": found["text"], "score": scores.astype(float), "source": found["source"],
            "heading": found["heading"], "chunk": found["chunk"], "doc_id": found["doc_id"],
            "metadata": [json.loads(m) for m in found["metadata"]]}).reset_index(drop=True)

    def documents(self) -> pd.DataFrame:
        """One row per document: source, doc_id, chunks, metadata."""
        import pandas as pd

        if not self.count():
            return pd.DataFrame(columns=["doc_id", "source", "chunks", "metadata"])
        df = (self.table.search().select(["doc_id", "source", "metadata"])
              .limit(self.count()).to_pandas())
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
        self.table.delete(where)
        self._index_text()

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


def _schema(embedder: Embedder) -> Any:
    import pyarrow as pa

    return vector_schema([
        ("id", pa.string()), ("doc_id", pa.string()), ("source", pa.string()),
        ("chunk", pa.int32()), ("heading", pa.string()), ("text", pa.string()),
        ("metadata", pa.string()), ("created_at", pa.float64())], embedder)


def _embedder_for(table: Any, where: str) -> Embedder:
    meta = table.schema.metadata or {}
    stamped = meta.get(EMBEDDER_KEY, b"").decode()
    found = embedder_from_stamp(stamped, int(meta.get(DIM_KEY, b"0").decode() or 0))
    if found is None:
        raise KnowledgeBaseError(f"{where} was built with embedder {stamped!r}: pass that "
                                 "embedder to fm_lab.kb.open(..., embedder=...)")
    return found


def create(name: str, *, store: RunStore | str | Path | None = None,
           embedder: Embedder | None = None, chunk_size: int = 800, overlap: int = 100,
           exist_ok: bool = False) -> KnowledgeBase:
    """Create knowledge base ``name`` beside the store (default embedder:
    :func:`~fm_lab.memory.embedders.default_embedder`).

    >>> kb = create("docs", store=Store(":memory:"))  # doctest: +SKIP
    """
    table_name = _table_name(name)
    path = lance_path(_store(store))
    db = connect(path)
    if table_name in table_names(db):
        if not exist_ok:
            raise KnowledgeBaseError(f"knowledge base {name!r} exists in {path}; use "
                                     "fm_lab.kb.open (or create(..., exist_ok=True))")
        return open(name, store=store, embedder=embedder, chunk_size=chunk_size,
                    overlap=overlap)
    chosen = embedder or default_embedder()
    chunk_text("", size=chunk_size, overlap=overlap)  # validates the settings
    table = db.create_table(table_name, schema=_schema(chosen))
    return KnowledgeBase(name, table, chosen, chunk_size=chunk_size, overlap=overlap)


def open(name: str, *, store: RunStore | str | Path | None = None,
         embedder: Embedder | None = None, chunk_size: int = 800,
         overlap: int = 100) -> KnowledgeBase:
    """Open knowledge base ``name``; ``embedder`` must match the one it was built with
    (hashing and litellm embedders are recognised from the table)."""
    table_name = _table_name(name)
    path = lance_path(_store(store))
    db = connect(path)
    if table_name not in table_names(db):
        raise KnowledgeBaseError(f"no knowledge base {name!r} in {path}; fm_lab.kb.names() "
                                 "lists them, fm_lab.kb.create makes one")
    table = db.open_table(table_name)
    where = f"knowledge base {name!r}"
    chosen = embedder or _embedder_for(table, where)
    check_embedder(table, chosen, where)
    return KnowledgeBase(name, table, chosen, chunk_size=chunk_size, overlap=overlap)


def names(*, store: RunStore | str | Path | None = None) -> list[str]:
    """The knowledge bases beside the store."""
    path = lance_path(_store(store))
    if not path.exists():
        return []
    return sorted(t[len(PREFIX):] for t in table_names(connect(path)) if t.startswith(PREFIX))


def drop(name: str, *, store: RunStore | str | Path | None = None) -> None:
    """Delete knowledge base ``name`` and its chunks."""
    table_name = _table_name(name)
    db = connect(lance_path(_store(store)))
    if table_name not in table_names(db):
        raise KnowledgeBaseError(f"no knowledge base {name!r} to drop")
    db.drop_table(table_name)
