"""The audit log: who did what, when, to which run, as an append-only hash chain.

Every store keeps the same rows (:class:`AuditRow`, table ``audit_log``): a ``seq`` (1, 2,
...), when (``acted_at``), who (``actor``, see :mod:`fm_lab.identity`), the ``action``, the
``run_id`` and suspension ``path`` it concerns, and what changed (``before``/``after``, JSON).
Each row also stores ``prev_hash`` (the previous row's ``hash``) and its own ``hash``, the
sha256 of the previous hash and its content, so editing, deleting or inserting a row breaks
the chain at that row and :func:`verify` says where. A chain cannot show that rows were cut
off its end; a store that can refuse changes outright (PostgreSQL: a trigger) does so too.

Stores append entries (:class:`AuditEntry`, without the chain fields) through
``RunStore.append_audit`` or, for the actions journal records describe (a run's start, an
answer), in the same transaction as those records (:func:`start_entry`, :func:`resume_entry`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypedDict

from fm_lab.store.codec import canonical
from fm_lab.store.errors import StoreError

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.records import JournalRecord, ResumeRecord, StartRecord

RUN_START: Final = "run.start"
RUN_RESUME: Final = "run.resume"  # an answer to a suspension (path), or a run continued
RUN_CANCEL: Final = "run.cancel"
RUN_DELETE: Final = "run.delete"
SUSPENSION_REFUSED: Final = "suspension.refused"  # an answer by someone not assigned
SUSPENSION_EXPIRED: Final = "suspension.expire"  # a wait's timeout applied
STORE_COPY: Final = "store.copy"  # another store's history copied in (fm_lab.store.copy)
GENESIS: Final = "0" * 64  # the prev_hash of the first row


class AuditEntry(TypedDict):
    """An action to log: ``at`` (epoch s), ``actor``, ``action``, the ``run_id`` and ``path``
    it concerns (or None), and ``before``/``after`` (JSON values, or None)."""

    at: float
    actor: str
    action: str
    run_id: str | None
    path: str | None
    before: Any
    after: Any


class AuditRow(TypedDict):
    """A stored audit row: the entry, numbered (``seq``), with its JSON as text and its place
    in the hash chain."""

    seq: int
    acted_at: dt.datetime
    actor: str
    action: str
    run_id: str | None
    path: str | None
    before: str | None  # canonical JSON text
    after: str | None
    prev_hash: str
    hash: str


AUDIT_COLUMNS: Final = tuple(AuditRow.__annotations__)


class AuditChainError(StoreError):
    """The audit log's hash chain is broken: a row was edited, removed or inserted."""


def entry(action: str, actor: str, *, run_id: str | None = None, path: str | None = None,
          before: Any = None, after: Any = None, at: float | None = None) -> AuditEntry:
    """An :class:`AuditEntry` happening now (or at ``at``)."""
    return AuditEntry(at=time.time() if at is None else at, actor=actor, action=action,
                      run_id=run_id, path=path, before=before, after=after)


def logs_entry(record: JournalRecord) -> bool:
    """True when storing ``record`` may log an audit entry: a top-level run's start, or an
    answer (a resume record), naming who acted (``by``; older journals lack it)."""
    if record["k"] == "start":
        return record.get("by") is not None and record["parent"] is None
    return record["k"] == "resume" and record.get("by") is not None


def start_entry(run_id: str, record: StartRecord, version: int) -> AuditEntry | None:
    """The ``run.start`` entry of a top-level run's start record (None for a child run, or a
    record without ``by``, from an older journal)."""
    actor = record.get("by")
    if actor is None or not logs_entry(record):
        return None
    return entry(RUN_START, actor, run_id=run_id, at=record["created"], after={
        "workflow_id": record["workflow_id"], "version": version, "hash": record["hash"]})


def resume_entry(run_id: str, record: ResumeRecord) -> AuditEntry | None:
    """The entry of a resume record that answered a waiting suspension: ``run.resume`` (an
    answer) or ``suspension.expire`` (a timeout applied); None without ``by``."""
    actor = record.get("by")
    if actor is None or not logs_entry(record):
        return None
    action = SUSPENSION_EXPIRED if record.get("expired") else RUN_RESUME
    return entry(action, actor, run_id=run_id, path=record["path"], at=record["at"],
                 before={"status": "waiting"}, after={"data": record.get("data")})


def _json(value: Any) -> str | None:
    return None if value is None else canonical(value)


def content_tail(at: dt.datetime, actor: str, action: str, run_id: str | None,
                 path: str | None, before: str | None, after: str | None) -> str:
    """What an entry's hash covers after its ``seq``: the hash is the sha256 of
    ``f"{prev_hash}\\n[{seq},{tail}"`` (``canonical([seq, at, actor, ...])``), so a server
    can number an entry and hash it from this text alone (``store/pg_start.py``)."""
    return canonical([at.astimezone(dt.UTC).isoformat(timespec="microseconds"), actor, action,
                      run_id, path, before, after])[1:]


def _hash(prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str,
          run_id: str | None, path: str | None, before: str | None, after: str | None) -> str:
    tail = content_tail(at, actor, action, run_id, path, before, after)
    return hashlib.sha256(f"{prev_hash}\n[{seq},{tail}".encode()).hexdigest()


def chain(entries: Iterable[AuditEntry], head: tuple[int, str] | None) -> list[AuditRow]:
    """``entries`` as rows following ``head`` (the last row's ``(seq, hash)``, None for an
    empty log)."""
    seq, prev = head if head is not None else (0, GENESIS)
    rows: list[AuditRow] = []
    for item in entries:
        seq += 1
        at = dt.datetime.fromtimestamp(item["at"], dt.UTC)
        before, after = _json(item["before"]), _json(item["after"])
        digest = _hash(prev, seq, at, item["actor"], item["action"], item["run_id"],
                       item["path"], before, after)
        rows.append(AuditRow(seq=seq, acted_at=at, actor=item["actor"], action=item["action"],
                             run_id=item["run_id"], path=item["path"], before=before,
                             after=after, prev_hash=prev, hash=digest))
        prev = digest
    return rows


def verify(rows: Sequence[AuditRow]) -> list[str]:
    """What is wrong with a whole log (``rows`` in ``seq`` order): an empty list when the
    chain is intact."""
    problems: list[str] = []
    expected_seq, prev = 1, GENESIS
    for row in rows:
        seq = int(row["seq"])
        if seq != expected_seq:
            problems.append(f"seq {seq} follows seq {expected_seq - 1} (rows missing or added)")
        if row["prev_hash"] != prev:
            problems.append(f"seq {seq}: prev_hash is not the hash of the row before it")
        before = _json(json.loads(row["before"])) if row["before"] is not None else None
        after = _json(json.loads(row["after"])) if row["after"] is not None else None
        digest = _hash(row["prev_hash"], seq, row["acted_at"], row["actor"], row["action"],
                       row["run_id"], row["path"], before, after)
        if digest != row["hash"]:
            problems.append(f"seq {seq}: its content does not match its hash (edited)")
        expected_seq, prev = seq + 1, row["hash"]
    return problems


def audit_frame(rows: Sequence[AuditRow]) -> pd.DataFrame:
    """Rows as the DataFrame ``fm_lab.audit()`` returns (``before``/``after`` decoded)."""
    import pandas as pd

    decoded = [{**row, "before": None if row["before"] is None else json.loads(row["before"]),
                "after": None if row["after"] is None else json.loads(row["after"])}
               for row in rows]
    frame = pd.DataFrame(decoded, columns=list(AUDIT_COLUMNS))
    frame["acted_at"] = pd.to_datetime(frame["acted_at"], utc=True)
    for column in ("run_id", "path"):  # None, not NaN, where an entry has none
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame
