"""A run's start on the PostgreSQL store in ONE round trip, when its workflow version is known.

The general path (:meth:`~fm_lab.store.pg_store.PostgresStore.ingest`) stores a start in two:
it reads the run row, the lease, the workflow's stored versions and the audit chain's head,
then writes the run row and the ``run.start`` entry, whose hash covers its number, the head's
hash and the version. Once this process has stored or seen a workflow's content (the version
of a ``(workflow_id, hash)`` never changes: versions are only added), the version is known, and
the rest needs no reply before the writes: ``begin``, the audit chain's lock, one statement and
``commit`` go out together. The statement checks the lease, inserts the run row unless it is
there (a start retried after its reply was lost), and appends the entry after the head it
reads: a statement after the lock sees every entry committed before it, and the server hashes
the entry from :func:`fm_lab.store.audit.content_tail` (``sha256(prev_hash || "\\n[" || seq ||
"," || tail)``, the chain's own rule). A start whose version is not known yet, and anything
that is not a lone start record, takes the general path.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fm_lab.store.audit import GENESIS, content_tail, start_entry
from fm_lab.store.codec import canonical
from fm_lab.store.ids import RunIdInUseError
from fm_lab.store.pg_locks import HELD, TAKING
from fm_lab.store.pg_rows import RUN_START_TYPES, run_start
from fm_lab.store.pg_sql import pipelined_transaction

if TYPE_CHECKING:
    import psycopg

    from fm_lab.store.records import JournalRecord, StartRecord

def fits(records: Sequence[JournalRecord]) -> bool:
    """True for a lone start record (what the engine commits before a run's first node)."""
    return len(records) == 1 and records[0]["k"] == "start"


@functools.cache
def statement(audited: bool, take: bool = False) -> str:
    """The start statement, appending the ``run.start`` entry when ``audited``; checking the
    lease, or (``take``, on the lock session) taking the run."""
    held = (TAKING.replace("%s", "%(run)s") if take
            else HELD.replace("%s", "%(lease)s", 1).replace("%s", "%(run)s", 1))
    typed = {**RUN_START_TYPES, "journal_seq": "bigint"}
    columns = ", ".join(typed)
    values = ", ".join(f"%({column})s::{kind}" for column, kind in typed.items())
    parts = [
        f"with r as (select {held} as held, exists (select 1 from runs where run_id = "
        "%(run)s) as found, (select trace_id from runs where run_id = %(run)s) as trace)",
        f"ins as (insert into runs ({columns}, status) select {values}, 'running' from r "
        "where r.held and not r.found returning run_id)"]
    if audited:
        parts += [
            "h as (select seq, hash from audit_log order by seq desc limit 1)",
            "n as (select coalesce((select seq from h), 0) + 1 as seq, "
            "coalesce((select hash from h), %(genesis)s::text) as prev)",
            "a as (insert into audit_log (seq, acted_at, actor, action, run_id, path, before, "
            "after, prev_hash, hash) select n.seq, %(at)s::timestamptz, %(actor)s::text, "
            "%(action)s::text, %(run)s::text, null, null, %(after)s::text, n.prev, "
            "encode(sha256(convert_to(n.prev || E'\\n[' || n.seq || ',' || %(tail)s::text, "
            "'UTF8')), 'hex') from n where exists (select 1 from ins))"]
    return ", ".join(parts) + " select held, found, trace from r"


def commit(conn: psycopg.Connection[Any], run_id: str, record: StartRecord, version: int,
           lease: int | None, audit_lock: int) -> bool:
    """Store the start ``record`` of ``run_id`` (its workflow at ``version``) in one round
    trip; True when the run is stored (now, or by an earlier try), False with nothing stored
    when the ``lease`` session (a backend pid) does not hold the run (the general path then
    says so). ``lease`` None: ``conn`` is the lock session, and takes the run in the same
    transaction (:data:`~fm_lab.store.pg_locks.TAKING`); False then when another process
    holds it. ``RunIdInUseError``, with nothing stored, when a run of that id another process
    started is stored (:func:`started_elsewhere`)."""
    params: dict[str, Any] = {**run_start(run_id, record, version), "run": run_id,
                              "lease": lease, "journal_seq": record["seq"]}
    entry = start_entry(run_id, record, version)
    if entry is not None:
        at = dt.datetime.fromtimestamp(entry["at"], dt.UTC)
        after = canonical(entry["after"])
        params.update(genesis=GENESIS, at=at, actor=entry["actor"], action=entry["action"],
                      after=after, tail=content_tail(at, entry["actor"], entry["action"],
                                                     run_id, None, None, after))
    with pipelined_transaction(conn):  # begin, the lock, the statement, commit: one sync
        if entry is not None:  # one extender of the chain at a time, as the general path
            conn.execute("select pg_advisory_xact_lock(%s)", [audit_lock])
        cursor = conn.execute(statement(entry is not None, lease is None), params,
                              prepare=True)
    row = cursor.fetchone()  # fetched by the pipeline's sync, after the commit
    if row is not None and row[0] and row[1] and started_elsewhere(row[2], record):
        raise id_in_use(run_id)  # nothing was stored (a run of that id is), the take undone
    return row is not None and bool(row[0])


def started_elsewhere(stored_trace: str | None, record: StartRecord) -> bool:
    """Whether a stored run of the start ``record``'s id (its ``trace_id``
    ``stored_trace``) is another run, started under the same id by another process after
    this one checked the id was free, not this start's own, stored by an earlier try. A
    start without a trace id (older journals) cannot tell: it is taken for its own."""
    mine = record.get("trace_id")
    return mine is not None and stored_trace is not None and stored_trace != mine


def id_in_use(run_id: str) -> RunIdInUseError:
    """The error of a start whose id another run took meanwhile."""
    return RunIdInUseError(f"run id {run_id!r} was taken by another run (started by another "
                           "process after this one checked it was free); nothing was stored")
