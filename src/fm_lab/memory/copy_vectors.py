"""Message vectors travel with ``fm-lab store copy``: the vectors a source store keeps for its
agent memory (LanceDB beside a DuckDB file, or pgvector in a PostgreSQL store) are added to the
target's message index, so semantic recall on the target finds the copied messages without
embedding them again (no embedding call, no cost). The vectors are read and added a batch
at a time (:mod:`fm_lab.memory.vector_rows`), never all at once.

Only messages the target's ``memory_messages`` holds get a vector (the store copy refuses
messages that would interleave with the target's threads), and only those without one there
yet, so a second copy adds nothing. The vectors keep their embedder's stamp: a target whose
index was written by another embedder refuses them in one line (``Memory.reindex()`` on the
target re-embeds instead)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fm_lab.memory.embedders import EmbedderMismatchError
from fm_lab.memory.history import COLUMNS, StoredMessage, from_row
from fm_lab.memory.vector_backend import message_index
from fm_lab.memory.vector_rows import BATCH, INDEXED, VECTOR, VectorTable, place

if TYPE_CHECKING:
    from fm_lab.memory.vector_backend import MessageIndex
    from fm_lab.store.base import SqlStore


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


def message_table(store: SqlStore) -> VectorTable | None:
    """The message vector table ``store`` keeps (None when it keeps none)."""
    from fm_lab.memory.pg_vectors import TABLE as PG_TABLE
    from fm_lab.memory.vectors import TABLE as LANCE_TABLE

    where = place(store)
    if where is None:
        return None
    return where.table(store, PG_TABLE if where.folder is None else LANCE_TABLE)


def copy_message_vectors(source: SqlStore, target: SqlStore,
                         dry_run: bool = False) -> VectorCopy:
    """Add ``source``'s message vectors to ``target``'s index for the messages ``target``
    holds and has no vector for (see the module docstring); ``source`` is read as one
    snapshot (:meth:`~fm_lab.memory.vector_rows.Place.snapshot`)."""
    where = place(source)
    if where is None:
        return VectorCopy(None, 0, 0)
    with where.snapshot(source):
        return _copy(target, message_table(source), dry_run)


def _copy(target: SqlStore, table: VectorTable | None, dry_run: bool) -> VectorCopy:
    """:func:`copy_message_vectors` inside the source's snapshot."""
    has_vector = {} if table is None else {
        str(row["message_id"]): bool(row[INDEXED])
        for rows in table.batches(["message_id", INDEXED]) for row in rows}
    if table is None or not has_vector:
        return VectorCopy(None, 0, 0)
    index = message_index(target, table.embedder)
    if dry_run:  # the messages are not in the target yet: count by the source's ids
        present = len(index.known(list(has_vector)))
        return VectorCopy(table.embedder.name, len(has_vector) - present, present)
    try:
        index.check()
    except EmbedderMismatchError as exc:  # another embedder's index: nothing added
        return VectorCopy(table.embedder.name, 0, 0, str(exc))
    # a message with text needs its vector (the index adds one per message with text)
    wanted = [m for m in _target_messages(target, list(has_vector))
              if not m.text.strip() or has_vector[m.message_id]]
    indexed = index.known([m.message_id for m in wanted])
    missing = {m.message_id: m for m in wanted if m.message_id not in indexed}
    if missing:
        _add(table, index, missing)
    return VectorCopy(table.embedder.name, len(missing), len(wanted) - len(missing))


def _add(table: VectorTable, index: MessageIndex, missing: dict[str, StoredMessage]) -> None:
    """Add the ``missing`` messages with their vectors from ``table``, a batch at a time."""
    import numpy as np

    dim = table.embedder.dim
    for rows in table.batches(["message_id", VECTOR]):
        found = [(missing[row["message_id"]], row[VECTOR]) for row in rows
                 if row["message_id"] in missing]
        vectors = [vector for message, vector in found if message.text.strip()]
        if found:
            index.add([message for message, _ in found],
                      np.asarray(vectors, np.float32).reshape(len(vectors), dim))
    index.optimize()


def _target_messages(target: SqlStore, ids: list[str]) -> list[StoredMessage]:
    """The messages among ``ids`` that ``target`` stores."""
    out: list[StoredMessage] = []
    with target.connection() as con:
        for start in range(0, len(ids), BATCH):
            part = ids[start:start + BATCH]
            out.extend(from_row(r) for r in con.execute(
                f"select {COLUMNS} from memory_messages where message_id in "
                f"({', '.join('?' * len(part))}) order by thread_id, sequence", part).fetchall())
    return out
