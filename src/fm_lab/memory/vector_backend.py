"""Where vectors live, decided in one place for memory recall and knowledge bases.

- ``"pgvector"``: in the store's own tables; needs a store that declares ``vectors``
  (PostgreSQL with the pgvector extension).
- ``"lancedb"``: a LanceDB folder: ``vector_path`` when given, else beside a DuckDB file
  (``<db>.lance``), else, for a server store, ``$FM_LAB_VECTORS`` (a folder every user of the
  store reaches); with none of these the choice is refused, never a folder of one user's.
- ``"auto"`` (the default): pgvector when the store has it and no ``vector_path`` was given,
  else LanceDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from fm_lab.memory.embedders import Embedder, Vectors
from fm_lab.memory.history import StoredMessage
from fm_lab.memory.lance import lance_path

if TYPE_CHECKING:
    from fm_lab.memory.vectors import Scope
    from fm_lab.store.base import SqlStore

VectorChoice = Literal["auto", "pgvector", "lancedb"]
Backend = Literal["pgvector", "lancedb"]
CHOICES: tuple[VectorChoice, ...] = ("auto", "pgvector", "lancedb")


class MessageIndex(Protocol):
    """What memory needs of a message vector table (LanceDB or pgvector)."""

    @property
    def backend(self) -> str: ...

    def check(self) -> None:
        """Open (or create) the table; raise EmbedderMismatchError for another embedder's."""
        ...

    def add(self, stored: Sequence[StoredMessage], vectors: Vectors) -> None: ...

    def search(self, vector: Vectors, *, top_k: int, scope: Scope, thread_id: str,
               resource_id: str | None, live_from: int | None) -> list[tuple[str, int]]: ...

    def windows(self, hits: Iterable[tuple[str, int]], before: int,
                after: int) -> list[StoredMessage]: ...

    def delete_thread(self, thread_id: str) -> None: ...

    def drop(self) -> None: ...

    def optimize(self) -> None: ...

    def count(self) -> int: ...

    def known(self, message_ids: Sequence[str]) -> set[str]:
        """The ids among ``message_ids`` that have a row here (none when the table is not
        made yet)."""
        ...


def check_choice(choice: str) -> VectorChoice:
    """``choice`` if it is one of :data:`CHOICES` (else ValueError)."""
    for known in CHOICES:
        if choice == known:
            return known
    raise ValueError(f"vectors must be one of {', '.join(CHOICES)}, got {choice!r}")


def choose(store: SqlStore, choice: VectorChoice = "auto",
           folder: str | Path | None = None) -> Backend:
    """The backend for ``store`` under ``choice`` (see the module docstring); raises
    ``UnsupportedStoreError`` for ``"pgvector"`` on a store without it."""
    from fm_lab.store.base import VECTORS, UnsupportedStoreError, has

    if check_choice(choice) == "pgvector":
        if folder is not None:
            raise ValueError("vector_path names a LanceDB folder; vectors='pgvector' keeps "
                             "vectors in the store (drop one of the two)")
        if not has(store, VECTORS):
            raise UnsupportedStoreError(
                f"vectors='pgvector' needs a store that keeps vectors; {store.path} does not "
                "(a PostgreSQL store with the pgvector extension does); use vectors='lancedb'")
        return "pgvector"
    if choice == "auto" and folder is None and has(store, VECTORS):
        return "pgvector"
    return "lancedb"


def folder_for(store: SqlStore, folder: str | Path | None = None) -> Path:
    """The LanceDB folder of ``store``: ``folder``, else beside its DuckDB file, else
    ``$FM_LAB_VECTORS`` (refused clearly when unset)."""
    return Path(folder).expanduser() if folder is not None else lance_path(store)


def message_index(store: SqlStore, embedder: Embedder, choice: VectorChoice = "auto",
                  folder: str | Path | None = None) -> MessageIndex:
    """The message vector table for ``store`` under ``choice`` (not opened yet)."""
    if choose(store, choice, folder) == "pgvector":
        from fm_lab.memory.pg_vectors import PgMessageVectors

        return PgMessageVectors(store, embedder)
    from fm_lab.memory.vectors import MessageVectors

    return MessageVectors(folder_for(store, folder), embedder)


def delete_thread_vectors(store: SqlStore, thread_id: str,
                          folder: str | Path | None = None) -> None:
    """Remove a thread's vectors wherever this store keeps some: its pgvector table and its
    LanceDB folder (when one is set and exists)."""
    from fm_lab.memory.vectors import MessageVectors
    from fm_lab.store.base import VECTORS, UnsupportedStoreError, has

    if has(store, VECTORS):
        from fm_lab.memory.pg_vectors import delete_thread_in

        delete_thread_in(store, thread_id)
    try:
        path = folder_for(store, folder)
    except UnsupportedStoreError:  # a server store without a LanceDB folder: none to clean
        return
    MessageVectors.delete_thread_at(path, thread_id)
