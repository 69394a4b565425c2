"""Journal records as rows of the PostgreSQL store's ``node_executions`` and ``spans`` tables:
tuples in column order (for ``executemany`` and COPY) and JSON arrays of objects by column name
(for the one-statement commits of :mod:`fm_lab.store.pg_commit`)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fm_lab.store.codec import dumps
from fm_lab.store.records import JournalRecord, NodeRecord, RunEndRecord, StartRecord

COPY_SPANS_FROM = 32  # span rows per ingest from which COPY beats a pipelined insert
NODE_COLUMNS = ("run_id", "node_id", "seq", "node_type", "status", "attempts", "input", "output",
                "error", "state_patch", "started_at", "ended_at", "duration_ms", "leaf",
                "cache_key", "cached_from")
SPAN_COLUMNS = ("trace_id", "span_id", "parent_span_id", "run_id", "kind", "name", "entity_id",
                "workflow_id", "node_id", "agent", "resource_id", "started_at", "ended_at",
                "duration_ms", "status", "input", "output", "input_size", "output_size", "error",
                "attributes", "events", "model", "provider", "input_tokens", "output_tokens",
                "cached_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd")
RUN_END_COLUMNS = ("status", "outputs", "error", "state", "ended_at")
# where span_table.COLUMNS has the start and the end (SPAN_COLUMNS: as timestamps, then the
# duration); every other column is in the same order in both
_STARTED = SPAN_COLUMNS.index("started_at")
_ROW_BY_ROW = 8  # span_rows goes row by row up to this many records, then column by column
# span columns of plain text (names, labels, ids), not JSON (whose text escapes a NUL byte)
_SPAN_TEXT = tuple(i for i, c in enumerate(SPAN_COLUMNS) if c in (
    "trace_id", "span_id", "parent_span_id", "kind", "name", "entity_id", "workflow_id",
    "node_id", "agent", "resource_id", "status", "model", "provider"))


def no_nul(value: Any) -> Any:
    """A span's name or label as PostgreSQL text can hold it: a NUL byte becomes U+FFFD (the
    span's JSON payloads keep it as it was)."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value \
        else value


def timestamp(seconds: float | None) -> dt.datetime | None:
    """Epoch seconds as a UTC timestamp (None stays None)."""
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def json_text(value: Any) -> str | None:
    """``value`` as fm_lab's JSON text (None stays SQL NULL)."""
    return None if value is None else dumps(value)


# the ``runs`` columns a run's start sets, with their types (in the tables' order)
RUN_START_TYPES = {
    "run_id": "text", "workflow_id": "text", "workflow_version": "integer", "inputs": "text",
    "created_at": "timestamptz", "owner_pid": "integer", "owner_host": "text",
    "parent_run_id": "text", "trace_id": "text", "started_by": "text", "workflow_hash": "text",
    "policy": "text", "forked_from": "text", "forked_at_node": "text"}


def run_start(run_id: str, record: StartRecord, version: int) -> dict[str, Any]:
    """The ``runs`` columns (:data:`RUN_START_TYPES`, by name) of run ``run_id`` that its
    start ``record`` sets, its workflow stored at ``version``."""
    return {"run_id": run_id, "workflow_id": record["workflow_id"], "workflow_version": version,
            "inputs": dumps(record["inputs"]), "created_at": timestamp(record["created"]),
            "owner_pid": record["pid"], "owner_host": record["host"],
            "parent_run_id": record["parent"], "trace_id": record.get("trace_id"),
            "started_by": record.get("by"), "workflow_hash": record["hash"],
            "policy": record.get("policy"), "forked_from": record.get("forked_from"),
            "forked_at_node": record.get("forked_at_node")}


def run_end(record: RunEndRecord) -> dict[str, Any]:
    """The ``runs`` columns (:data:`RUN_END_COLUMNS`, by name) a run's end record sets."""
    return dict(zip(RUN_END_COLUMNS, (
        record["status"], dumps(record.get("outputs")),
        dumps(record["error"]) if record.get("error") else None, dumps(record.get("state")),
        timestamp(record.get("ended"))), strict=True))


# a node record's rows made as a journal queues it: its ``node_executions`` row and its span's
# values (span_table.COLUMNS order, the workflow id left to the commit), by the record's seq
NodeRows = tuple[tuple[Any, ...], tuple[Any, ...] | None]


def queued_rows(run_id: str, record: NodeRecord) -> NodeRows:
    """:data:`NodeRows` of a node record, both from the record as it is now
    (``NotSerialisableError`` for a payload JSON cannot hold)."""
    from fm_lab.store.span_table import span_values

    return node_row(run_id, record), span_values(record, run_id, None)


def node_rows(run_id: str, nodes: Sequence[NodeRecord],
              known: Mapping[int, NodeRows] | None = None) -> list[tuple[Any, ...]]:
    """``node_executions`` rows (in :data:`NODE_COLUMNS` order) of node records; ``known``:
    rows made as they were queued, by seq."""
    if known:
        return [made[0] if (made := known.get(r["seq"])) else node_row(run_id, r)
                for r in nodes]
    return [node_row(run_id, r) for r in nodes]


def node_row(run_id: str, r: NodeRecord) -> tuple[Any, ...]:
    """The ``node_executions`` row of one node record: its payloads as fm_lab's JSON
    (``NotSerialisableError`` for a value JSON cannot hold)."""
    started, ended = r.get("started"), r.get("ended")
    return (
        run_id, r["node"], r["seq"], r.get("type"), r["status"], r.get("attempts", 0),
        json_text(r.get("input")),
        "null" if r.get("output") is None else dumps(r["output"]),
        dumps(r["error"]) if r.get("error") else None,
        dumps(r["state_patch"]) if r.get("state_patch") else None,
        timestamp(started), timestamp(ended),
        None if started is None or ended is None else (ended - started) * 1000,
        r.get("leaf"), r.get("cache_key"),
        dumps(r["cached_from"]) if r.get("cached_from") else None)


def span_rows(run_id: str | None, workflow_id: str | None,
              records: Sequence[JournalRecord],
              known: Mapping[int, NodeRows] | None = None) -> list[tuple[Any, ...]]:
    """``spans`` rows (in :data:`SPAN_COLUMNS` order) for the spans of ``records`` (node
    records with a span, span records), in order: the DuckDB store's rows
    (:mod:`fm_lab.store.span_table`) with timestamps and the duration, and names PostgreSQL
    text can hold. A commit's few records go row by row (a node's span from ``known``, made as
    it was queued, when the workflow id is left to the commit), a COPY's many column by column
    (~1.2x faster for a thousand, ~3x slower for one)."""
    from fm_lab.store.span_table import rows_from_records, span_values

    if len(records) <= _ROW_BY_ROW:
        rows = []
        for record in records:
            made = known.get(record["seq"]) if known and workflow_id is None else None
            values = made[1] if made else span_values(record, run_id, workflow_id)
            if values is None:
                continue
            started, ended = values[_STARTED], values[_STARTED + 1]
            row = [*values[:_STARTED], timestamp(started), timestamp(ended),
                   None if started is None or ended is None else (ended - started) * 1000,
                   *values[_STARTED + 2:]]
            for index in _SPAN_TEXT:  # names and labels: PostgreSQL text holds no NUL byte
                row[index] = no_nul(row[index])
            rows.append(tuple(row))
        return rows
    cols = rows_from_records(run_id, workflow_id, records)
    if not cols["span_id"]:
        return []
    order = [cols.get(c, []) for c in SPAN_COLUMNS]
    order[_STARTED] = [timestamp(t) for t in cols["started"]]
    order[_STARTED + 1] = [timestamp(t) for t in cols["ended"]]
    order[_STARTED + 2] = [None if t is None or e is None else (e - t) * 1000
                           for t, e in zip(cols["started"], cols["ended"], strict=True)]
    for index in _SPAN_TEXT:
        order[index] = [no_nul(v) for v in order[index]]
    return list(zip(*order, strict=True))


def json_rows(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str | None:
    """``rows`` as a JSON array of objects by column name, or None when a value would not come
    back the same (a NaN or infinite float, a huge integer): the caller then takes a path with
    typed parameters."""
    import orjson

    objects = []
    for row in rows:
        for value in row:
            if isinstance(value, float) and not math.isfinite(value):
                return None
        objects.append(dict(zip(names, row, strict=True)))
    try:
        return orjson.dumps(objects).decode()
    except (TypeError, orjson.JSONEncodeError):
        return None
