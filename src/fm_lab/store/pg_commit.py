"""A run's commit as ONE statement on the PostgreSQL store: one round trip, its own transaction.

What a chain commits is a node or two (node records and their spans) and, at the end, the run's
workflow span and end record. Such a batch goes as one statement where the general path of
:meth:`~fm_lab.store.pg_store.PostgresStore.ingest` takes six or more (begin, lock the run row,
check the lease, insert nodes, insert spans, store the end, move ``journal_seq``, commit). The
rows go as JSON arrays (one parameter each, read back into the tables' row types); the rules
are the general path's, in SQL: the run row is locked (``for update``) while the committing
process's lock session holds the run's lease (:data:`fm_lab.store.pg_locks.HELD`; a commit on
the lock session itself, which holds the lease, checks nothing: ``lease`` None); the batch
is stored when its first record comes after the run's ``journal_seq`` (a commit retried after
its reply was lost stores nothing again; a batch the run holds part of stores nothing here and
takes the general path, which stores the rest); a run's workflow span replaces its stored copy
(a resumed run rewrites it), found by the run's id (an index), never among every run's workflow
spans; the end record sets the run's status, outputs, error and state; ``journal_seq`` moves to
the last record. A ``run_id`` naming no run (a standalone trace), a run whose lease the process
no longer holds, or a value JSON cannot carry stores nothing here: the general path then tells
those apart. Rows go in as whole JSON arrays (``json_populate_recordset``), with no per-row
test: that halved the server's time for a node's span.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fm_lab.store.pg_locks import GIVE_UP_ENDED, HELD
from fm_lab.store.pg_rows import (
    COPY_SPANS_FROM,
    NODE_COLUMNS,
    RUN_END_COLUMNS,
    SPAN_COLUMNS,
    NodeRows,
    json_rows,
    node_rows,
    run_end,
    span_rows,
)
from fm_lab.store.pg_sql import pipelined_transaction

if TYPE_CHECKING:
    import psycopg

    from fm_lab.store.records import JournalRecord, NodeRecord



def fits(records: Sequence[JournalRecord]) -> bool:
    """True when ``records`` can be committed by :func:`commit`: a few node and span records
    (at most one workflow span; from :data:`COPY_SPANS_FROM` records the general path's COPY
    is better), then perhaps the run's end record."""
    if not records or len(records) >= COPY_SPANS_FROM:
        return False
    workflow_spans = 0
    for index, record in enumerate(records):
        if record["k"] == "span":
            workflow_spans += record["kind"] == "workflow"
        elif record["k"] != "node" and not (record["k"] == "run" and index == len(records) - 1):
            return False
    return workflow_spans <= 1


@functools.cache
def statement(lease: bool, replace: bool, end: bool) -> str:
    """The commit statement: with the ``lease`` check, the workflow span ``replace``-d, the
    run's ``end`` stored."""
    held = " and " + HELD.replace("%s", "%(lease)s", 1).replace("%s", "%(run)s", 1)
    fresh = "%(first)s > (select journal_seq from r)"  # NULL (false) when r is empty
    spans = ", ".join("coalesce(v.workflow_id, (select workflow_id from r))"
                      if c == "workflow_id" else f"v.{c}" for c in SPAN_COLUMNS)
    parts = [
        "with r as (select journal_seq, workflow_id from runs where run_id = %(run)s"
        f"{held if lease else ''} for update)",
        f"n as (insert into node_executions ({', '.join(NODE_COLUMNS)}) "
        f"select {', '.join('v.' + c for c in NODE_COLUMNS)} "
        f"from json_populate_recordset(null::node_executions, %(nodes)s::json) v "
        f"where {fresh})",
        f"s as (insert into spans ({', '.join(SPAN_COLUMNS)}) select {spans} "
        f"from json_populate_recordset(null::spans, %(spans)s::json) v where {fresh})"]
    if replace:  # the run's own spans (an index), not every run's workflow spans
        parts.append("d as (delete from spans where run_id = %(run)s and kind = 'workflow' "
                     f"and span_id = %(replaced)s and {fresh})")
    ended = "".join(f", {c} = %({c})s" for c in RUN_END_COLUMNS) if end else ""
    parts.append(f"u as (update runs set journal_seq = %(last)s{ended} where run_id = %(run)s "
                 f"and {fresh})")
    return ", ".join(parts) + " select journal_seq from r"


def commit(conn: psycopg.Connection[Any], run_id: str, records: Sequence[JournalRecord],
           lease: int | None, give_up: bool = False,
           known_rows: Mapping[int, NodeRows] | None = None) -> bool:
    """Store ``records`` (:func:`fits` them, in ``seq`` order) of run ``run_id`` in one
    statement; False, with nothing stored, when ``run_id`` names no run, the ``lease`` session
    (a backend pid) does not hold it, the run holds part of the batch already, or a value does
    not fit JSON. ``give_up``: ``conn`` is the lock session holding the run (``lease`` None),
    and gives the run up once the batch is committed, in the same round trip: True then
    when it did. ``known_rows``: node records' rows made as they were queued, by seq
    (:data:`~fm_lab.store.pg_rows.NodeRows`)."""
    nodes: list[NodeRecord] = [r for r in records if r["k"] == "node"]
    spanned = [r for r in records if r["k"] == "span" or r.get("span")]
    node_json = json_rows(NODE_COLUMNS, node_rows(run_id, nodes, known_rows))
    span_json = json_rows(SPAN_COLUMNS, span_rows(run_id, None, spanned, known_rows))
    if node_json is None or span_json is None:
        return False
    first, last = records[0]["seq"], records[-1]["seq"]
    params: dict[str, Any] = {"run": run_id, "lease": lease, "nodes": node_json,
                              "spans": span_json, "first": first, "last": last}
    workflow = next((r for r in records if r["k"] == "span" and r["kind"] == "workflow"), None)
    if workflow is not None:
        params["replaced"] = workflow["span"]
    end = records[-1]
    if end["k"] == "run":
        params.update(run_end(end))
    sql = statement(lease is not None, workflow is not None, end["k"] == "run")
    if give_up:
        gave_up: list[psycopg.Cursor[Any]] = []
        with pipelined_transaction(conn, then=lambda: gave_up.append(conn.execute(
                GIVE_UP_ENDED, [run_id, run_id, run_id, last]))):
            stored = conn.execute(sql, params, prepare=True)
        # fetched once the pipeline's one sync came back: a fetch inside waits for the server
        return _stored(stored.fetchone(), first, last) and gave_up[0].fetchone() is not None
    cursor = _cursor(conn)  # prepared at once (psycopg would after five): a new process's
    row = cursor.execute(sql, params, prepare=True).fetchone()  # first commits are not planned
    return _stored(row, first, last)


def _cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """A cursor of ``conn`` kept on it for its commits (one thread uses a connection at a
    time): making one per commit was ~4% of a chain's CPU."""
    cursor: psycopg.Cursor[Any] | None = getattr(conn, "_fm_lab_commit_cursor", None)
    if cursor is None or cursor.closed:
        cursor = conn.cursor()
        conn._fm_lab_commit_cursor = cursor  # type: ignore[attr-defined]
    return cursor


def _stored(row: tuple[Any, ...] | None, first: int, last: int) -> bool:
    """Whether the batch of seqs ``first``..``last`` is stored, from the run's ``journal_seq``
    before the statement (``row``): stored now (the batch came after it) or before (a retry);
    not when the run holds only part of it (the general path stores the rest), nor when there
    is no run."""
    return row is not None and not first <= int(row[0]) < last
