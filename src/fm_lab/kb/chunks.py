"""What a knowledge base needs of the table that keeps its chunks (LanceDB or pgvector): the
rows, replace a document's chunks, delete by filter, and the three searches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from fm_lab.memory.embedders import Embedder, Vectors

if TYPE_CHECKING:
    import pandas as pd

Mode = Literal["hybrid", "vector", "fts"]
PREFIX = "kb__"
RRF_K = 60  # reciprocal-rank fusion: score = sum of 1 / (RRF_K + rank) over the rankings
HITS = ["text", "score", "source", "heading", "chunk", "doc_id", "metadata"]
COLUMNS = ("id", "doc_id", "source", "chunk", "heading", "text", "metadata", "created_at")
"""A chunk's fields, as its table's columns (the vector aside)."""


@dataclass
class Chunk:
    """One stored chunk (``metadata`` as canonical JSON text)."""

    id: str
    doc_id: str
    source: str
    chunk: int
    heading: str
    text: str
    metadata: str
    created_at: float


class ChunkTable(Protocol):
    """A knowledge base's chunk table, written by one embedder."""

    @property
    def embedder(self) -> Embedder: ...

    def count(self) -> int:
        """Number of chunks."""
        ...

    def replace_document(self, doc_id: str, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Upsert ``chunks`` (one vector each) and delete ``doc_id``'s other chunks."""
        ...

    def add(self, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Insert the ``chunks`` whose ids the table lacks (one vector each)."""
        ...

    def delete(self, where: str) -> None:
        """Delete the chunks matching the SQL condition ``where``."""
        ...

    def search(self, query: str, k: int, where: str | None, mode: Mode) -> pd.DataFrame:
        """The ``k`` best chunks as a DataFrame with the columns :data:`HITS`, best first
        (``metadata`` as stored text)."""
        ...

    def rows(self) -> pd.DataFrame:
        """``doc_id``, ``source`` and ``metadata`` of every chunk."""
        ...

    def optimize(self) -> None:
        """Compact the table and bring its indexes up to date."""
        ...
