"""Message vectors travel with ``fm-lab store copy``: the vectors a source store keeps for its
agent memory (LanceDB beside a DuckDB file, or pgvector in a PostgreSQL store) are added to the
target's message index, so semantic recall on the target finds the copied messages without
embedding them again (no embedding call, no cost).

Only messages the target's ``memory_messages`` holds get a vector (the store copy refuses
messages that would interleave with the target's threads), and only those without one there
yet, so a second copy adds nothing. The vectors keep their embedder's stamp: a target whose
index was written by another embedder refuses them in one line (``Memory.reindex()`` on the
target re-embeds instead)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fm_lab.memory.embedders import EmbedderMismatchError, Vectors
from fm_lab.memory.history import COLUMNS, StoredMessage, from_row
from fm_lab.memory.vector_backend import choose, folder_for, message_index

if TYPE_CHECKING:
    from pathlib import Path

    from fm_lab.store.base import SqlStore

CHUNK = 2_000  # messages per add


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
class SourceVectors:
    """What a source store holds: its embedder's stamp and a vector per message id (None for
    a message without text)."""

    embedder: StampOnly
    vectors: dict[str, list[float] | None]


@dataclass(frozen=True)
class VectorCopy:
    """What :func:`copy_message_vectors` did (or, dry, would do)."""

    embedder: str | None
    copied: int
    present: int
    refused: str | None = None  # why none were copied (the target's index is another's)

    def line(self, dry_run: bool = False) -> str:
        """One line for the copy's report."""
        if self.embedder is None:
            return "  memory vectors: none in the source"
        if self.refused is not None:
            return f"  memory vectors ({self.embedder}) not copied: {self.refused}"
        verb = "would copy" if dry_run else "copied"
        return (f"  memory vectors ({self.embedder}): {verb} {self.copied}, "
                f"{self.present} already there")


def read_source(store: SqlStore) -> SourceVectors | None:
    """The message vectors ``store`` keeps (None when it keeps none)."""
    from fm_lab.store.base import UnsupportedStoreError

    if choose(store) == "pgvector":
        return _from_pgvector(store)
    try:
        folder = folder_for(store)
    except UnsupportedStoreError:  # a server store without a shared LanceDB folder
        return None
    return _from_lance(folder) if folder.exists() else None


def _from_pgvector(store: SqlStore) -> SourceVectors | None:
    from fm_lab.memory.pg_vectors import REGISTRY, TABLE, table_exists

    with store.connection() as con:
        if not (table_exists(con, REGISTRY) and table_exists(con, TABLE)):
            return None
        stamp = con.execute(f"select embedder, dim from {REGISTRY} where name = ?",
                            [TABLE]).fetchone()
        if stamp is None:
            return None
        rows = con.execute(f"select message_id, embedding::text from {TABLE}").fetchall()
    return SourceVectors(StampOnly(str(stamp[0]), int(stamp[1])),
                         {str(r[0]): _parse(r[1]) for r in rows})


def _parse(text: str | None) -> list[float] | None:
    return None if text is None else [float(v) for v in text.strip("[]").split(",")]


def _from_lance(folder: Path) -> SourceVectors | None:
    from fm_lab.memory.lance import DIM_KEY, EMBEDDER_KEY, connect, table_names
    from fm_lab.memory.vectors import TABLE

    db = connect(folder)
    if TABLE not in table_names(db):
        return None
    table = db.open_table(TABLE)
    meta = table.schema.metadata or {}
    stamp = StampOnly(meta[EMBEDDER_KEY].decode(), int(meta[DIM_KEY].decode()))
    rows = table.to_arrow().select(["message_id", "indexed", "vector"]).to_pylist()
    return SourceVectors(stamp, {r["message_id"]: r["vector"] if r["indexed"] else None
                                 for r in rows})


def copy_message_vectors(source: SqlStore, target: SqlStore,
                         dry_run: bool = False) -> VectorCopy:
    """Add ``source``'s message vectors to ``target``'s index for the messages ``target``
    holds and has no vector for (see the module docstring)."""
    import numpy as np

    found = read_source(source)
    if found is None or not found.vectors:
        return VectorCopy(None, 0, 0)
    index = message_index(target, found.embedder)
    if dry_run:  # the messages are not in the target yet: count by the source's ids
        present = len(index.known(list(found.vectors)))
        return VectorCopy(found.embedder.name, len(found.vectors) - present, present)
    try:
        index.check()
    except EmbedderMismatchError as exc:  # another embedder's index: nothing added
        return VectorCopy(found.embedder.name, 0, 0, str(exc))
    # a message with text needs its vector (the index adds one per message with text)
    wanted = [m for m in _target_messages(target, list(found.vectors))
              if not m.text.strip() or found.vectors[m.message_id] is not None]
    indexed = index.known([m.message_id for m in wanted])
    missing = [m for m in wanted if m.message_id not in indexed]
    for start in range(0, len(missing), CHUNK):
        chunk = missing[start:start + CHUNK]
        rows = [found.vectors[m.message_id] for m in chunk if m.text.strip()]
        index.add(chunk, np.asarray(rows, np.float32).reshape(len(rows), found.embedder.dim))
    if missing:
        index.optimize()
    return VectorCopy(found.embedder.name, len(missing), len(wanted) - len(missing))


def _target_messages(target: SqlStore, ids: list[str]) -> list[StoredMessage]:
    """The messages among ``ids`` that ``target`` stores."""
    out: list[StoredMessage] = []
    with target.connection() as con:
        for start in range(0, len(ids), CHUNK):
            part = ids[start:start + CHUNK]
            out.extend(from_row(r) for r in con.execute(
                f"select {COLUMNS} from memory_messages where message_id in "
                f"({', '.join('?' * len(part))}) order by thread_id, sequence", part).fetchall())
    return out
