"""Knowledge bases travel with ``fm-lab store copy``: each knowledge base of the source (its
chunks with their text, source, heading, metadata and time, their vectors, and the stamp of the
embedder that made them) goes into the target's knowledge base of the same name, made there
for that embedder when missing, in pgvector or LanceDB as the target keeps vectors. ``search``
on the target then finds the copied chunks without embedding them again (no embedding call,
no cost). Vectors are read and written a batch at a time, never a whole table at once.

A document (``doc_id``) is the unit. One the target lacks comes whole; one the target has with
the same chunks (chunk ids hash the document, position, heading and text) is left alone, so a
second copy adds nothing; one it has with other chunks (edited on one side since) is refused,
the target's kept. A target knowledge base of the same name made by another embedder refuses
that whole knowledge base in one line; the rest of the copy goes on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fm_lab.kb.chunks import COLUMNS, PREFIX, Chunk
from fm_lab.memory.embedders import EmbedderMismatchError, check_stamp
from fm_lab.memory.vector_rows import VECTOR, Place, VectorTable, place

if TYPE_CHECKING:
    from fm_lab.store.base import SqlStore

SHOWN = 3  # documents named in a report line


@dataclass(frozen=True)
class KbCopy:
    """What the copy did (or, dry, would do) with one knowledge base."""

    name: str
    embedder: str
    copied: int = 0  # chunks
    documents: int = 0  # documents those chunks make up
    present: int = 0  # chunks the target had already
    differ: tuple[str, ...] = ()  # documents the target has with other chunks: kept there
    refused: str | None = None  # why nothing was copied

    @property
    def failed(self) -> bool:
        """Whether something of this knowledge base was not copied."""
        return self.refused is not None or bool(self.differ)

    def line(self, dry_run: bool = False) -> str:
        """One line for the copy's report."""
        head = f"  knowledge base {self.name} ({self.embedder})"
        if self.refused is not None:
            return f"{head} not copied: {self.refused}"
        verb = "would copy" if dry_run else "copied"
        out = (f"{head}: {verb} {self.copied} chunks of {self.documents} documents, "
               f"{self.present} already there")
        if self.differ:
            named = ", ".join(self.differ[:SHOWN]) + (", ..." if len(self.differ) > SHOWN
                                                       else "")
            out += (f"; {len(self.differ)} documents differ in the target, its chunks kept: "
                    f"{named}")
        return out


def lines(copies: Sequence[KbCopy], dry_run: bool = False) -> list[str]:
    """The report's lines for :func:`copy_knowledge_bases`."""
    return [c.line(dry_run) for c in copies] or ["  knowledge bases: none in the source"]


def copy_knowledge_bases(source: SqlStore, target: SqlStore,
                         dry_run: bool = False) -> list[KbCopy]:
    """Copy every knowledge base of ``source`` into ``target`` (see the module docstring)."""
    here = place(source)
    if here is None:
        return []
    there = place(target)
    with here.snapshot(source):  # what is planned is what is written, whole
        return [_copy(source, target, here, there, name[len(PREFIX):], dry_run)
                for name in here.names(source) if name.startswith(PREFIX)]


def _copy(source: SqlStore, target: SqlStore, here: Place, there: Place | None, name: str,
          dry_run: bool) -> KbCopy:
    table = here.table(source, PREFIX + name)
    if table is None:  # dropped since it was listed
        return KbCopy(name, "?", refused="it was dropped from the source during the copy")
    stamp = table.embedder
    if there is None:
        return KbCopy(name, stamp.name, refused=f"{target.path} keeps no vectors (no pgvector "
                                                "and no $FM_LAB_VECTORS folder)")
    theirs = there.table(target, PREFIX + name)
    if theirs is not None:
        try:
            check_stamp(theirs.embedder.name, str(theirs.embedder.dim), stamp,
                        f"knowledge base {name!r} of the target")
        except EmbedderMismatchError as exc:
            return KbCopy(name, stamp.name, refused=str(exc))
    wanted, done = _plan(_documents(table), {} if theirs is None else _documents(theirs))
    if wanted and not dry_run:
        _write(table, target, name, wanted)
    return KbCopy(name, stamp.name, copied=len(wanted), present=done.present,
                  documents=done.documents, differ=tuple(done.differ))


@dataclass
class _Plan:
    """What a copy finds: documents to copy, chunks there already, documents that differ."""

    documents: int = 0
    present: int = 0
    differ: list[str] = field(default_factory=list)


def _documents(table: VectorTable) -> dict[str, set[str]]:
    """Each document's chunk ids (ids only: no vectors are read)."""
    out: dict[str, set[str]] = {}
    for rows in table.batches(["id", "doc_id"]):
        for row in rows:
            out.setdefault(str(row["doc_id"]), set()).add(str(row["id"]))
    return out


def _plan(ours: dict[str, set[str]],
          theirs: dict[str, set[str]]) -> tuple[set[str], _Plan]:
    """The chunk ids to copy (the documents the target lacks), and the counts."""
    wanted: set[str] = set()
    done = _Plan()
    for doc, ids in sorted(ours.items()):
        if doc not in theirs:
            wanted |= ids
            done.documents += 1
        elif theirs[doc] == ids:
            done.present += len(ids)
        else:
            done.differ.append(doc)
    return wanted, done


def _write(table: VectorTable, target: SqlStore, name: str, wanted: set[str]) -> None:
    """Add the ``wanted`` chunks of ``table`` to the target's knowledge base ``name`` (made
    for the source's embedder when missing), a batch at a time."""
    import numpy as np

    from fm_lab.kb.base import create

    kb = create(name, store=target, embedder=table.embedder, exist_ok=True)
    for rows in table.batches([*COLUMNS, VECTOR]):
        picked: list[dict[str, Any]] = [r for r in rows if r["id"] in wanted]
        if picked:
            kb.chunks.add([Chunk(**{c: r[c] for c in COLUMNS}) for r in picked],
                          np.asarray([r[VECTOR] for r in picked], np.float32))
    kb.optimize()
