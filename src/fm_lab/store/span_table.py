"""Turning journal records into rows of the ``spans`` table (one Arrow batch per ingest)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from fm_lab.store.codec import dumpb
from fm_lab.store.columns import SMALL, relation
from fm_lab.store.journal import split_records
from fm_lab.store.records import JournalRecord, NodeRecord, SpanRecord


def _encode(value: Any) -> str:
    return dumpb(value).decode()


if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

MAX_CHARS = int(os.environ.get("FM_LAB_SPAN_MAX_CHARS", "4000"))
_NODE_STATUS = {"succeeded": "ok", "failed": "error"}
COLUMNS = ("trace_id", "span_id", "parent_span_id", "run_id", "kind", "name", "entity_id",
           "workflow_id", "node_id", "agent", "resource_id", "started", "ended", "status",
           "input", "output", "input_size", "output_size", "error", "attributes", "events",
           "model", "provider", "input_tokens", "output_tokens", "cached_tokens",
           "cache_write_tokens", "reasoning_tokens", "cost_usd")
_INTS = ("input_size", "output_size", "input_tokens", "output_tokens", "cached_tokens",
         "cache_write_tokens", "reasoning_tokens")
_FLOATS = ("started", "ended", "cost_usd")


def rows_from_records(run_id: str | None, workflow_id: str | None,
                      records: Iterable[JournalRecord], limit: int = MAX_CHARS,
                      ) -> dict[str, list[Any]]:
    """Column lists for the spans of ``records``: node records (which carry their span) and
    span records (other kinds are skipped)."""
    rows = [row for r in records
            if (row := span_values(r, run_id, workflow_id, limit)) is not None]
    if not rows:
        return {name: [] for name in COLUMNS}
    columns = zip(*rows, strict=True)
    return {name: list(column) for name, column in zip(COLUMNS, columns, strict=True)}


def span_values(r: JournalRecord, run_id: str | None, workflow_id: str | None,
                limit: int = MAX_CHARS) -> tuple[Any, ...] | None:
    """The span of one record as a row in :data:`COLUMNS` order (None: a record without one):
    a span record, or a node record (which carries its span). Payloads are JSON text, cut to
    ``limit`` characters (their sizes are of the whole)."""
    encode = _encode
    rec = cast("dict[str, Any]", r)  # a span or a node record, told apart by ``k`` below
    get = rec.get
    kind = rec["k"]
    if kind != "span" and (kind != "node" or not get("span")):
        return None
    error = get("error")
    in_text, in_size = _payload_text(get("input"), limit)
    out_text, out_size = _payload_text(get("output"), limit)
    error_text = encode(error) if error else None
    evts = get("events")
    events = encode(evts) if evts else None
    if kind == "span":
        attrs = get("attrs")
        return (rec["trace"], rec["span"], get("parent"), get("run") or run_id, rec["kind"],
                get("name"), get("entity"), get("workflow") or workflow_id, get("node"),
                get("agent"), get("resource"), get("started"), get("ended"), get("status"),
                in_text, out_text, in_size, out_size, error_text,
                encode(attrs) if attrs else None, events, get("model"), get("provider"),
                get("input_tokens"), get("output_tokens"), get("cached_tokens"),
                get("cache_write_tokens"), get("reasoning_tokens"), get("cost_usd"))
    path = rec["node"]
    node_attrs: dict[str, Any] = {"node_type": get("type"), "attempts": get("attempts")}
    cached_from = get("cached_from")
    if cached_from:
        node_attrs["fm_lab.cache.hit"] = True
        node_attrs["fm_lab.cache.source"] = cached_from
    return (rec["trace"], rec["span"], get("pspan"), run_id,
            "item" if path.endswith("]") else "node", path, get("entity"), workflow_id, path,
            None, None, get("started"), get("ended"),
            _NODE_STATUS.get(rec["status"], rec["status"]),
            in_text, out_text, in_size, out_size, error_text, encode(node_attrs), events,
            None, None, None, None, None, None, None, None)


def _payload_text(value: Any, limit: int) -> tuple[str | None, int | None]:
    """A payload's JSON text, cut to ``limit`` characters, and the size of the whole."""
    if value is None:
        return None, None
    text = _encode(value)
    size = len(text)
    return (text if size <= limit else _encode(text[:limit] + "…")), size


TYPES = {name: "BIGINT" if name in _INTS else "DOUBLE" if name in _FLOATS else "VARCHAR"
         for name in COLUMNS}


def arrow_table(cols: dict[str, list[Any]]) -> pa.Table:
    """An Arrow table with the spans columns, typed."""
    from fm_lab.store.columns import arrow_table as typed

    return typed(cols, TYPES)


# what DuckDB's from_json reads out of a journal span record (payloads stay JSON text): the
# keys of records.SpanRecord
_SPAN_RECORD = json.dumps({
    "trace": "VARCHAR", "span": "VARCHAR", "parent": "VARCHAR", "run": "VARCHAR",
    "kind": "VARCHAR", "name": "VARCHAR", "entity": "VARCHAR", "workflow": "VARCHAR",
    "node": "VARCHAR", "agent": "VARCHAR", "resource": "VARCHAR", "started": "DOUBLE",
    "ended": "DOUBLE", "status": "VARCHAR", "input": "JSON", "output": "JSON", "error": "JSON",
    "attrs": "JSON", "events": "JSON", "model": "VARCHAR", "provider": "VARCHAR",
    "input_tokens": "BIGINT", "output_tokens": "BIGINT", "cached_tokens": "BIGINT",
    "cache_write_tokens": "BIGINT", "reasoning_tokens": "BIGINT", "cost_usd": "DOUBLE"})
_PARSE_CHUNK = 4096  # lines per Arrow batch: DuckDB's threads each take whole batches
_EMPTY_JSON = "('{}', '[]', 'null', '\"\"')"


def _payload(field: str) -> str:
    """SQL for a payload column: its JSON text, cut to the limit as ``rows_from_records`` does."""
    text = f"s.{field}::varchar"
    return (f"case when length({text}) <= $limit then s.{field} "
            f"else to_json(left({text}, $limit) || '…') end")


def _optional(field: str) -> str:
    """SQL for attributes/events/error: NULL when empty, as the Python path stores them."""
    return f"case when s.{field}::varchar in {_EMPTY_JSON} then null else s.{field} end"


_INSERT_SPAN_RECORDS = (
    "insert into spans select s.trace, s.span, s.parent, coalesce(s.run, $run), s.kind, s.name, "
    "s.entity, coalesce(s.workflow, $workflow), s.node, s.agent, s.resource, "
    "to_timestamp(s.started), to_timestamp(s.ended), (s.ended - s.started) * 1000, s.status, "
    f"{_payload('input')}, {_payload('output')}, length(s.input::varchar), "
    f"length(s.output::varchar), {_optional('error')}, {_optional('attrs')}, "
    f"{_optional('events')}, s.model, s.provider, s.input_tokens, s.output_tokens, "
    "s.cached_tokens, s.cache_write_tokens, s.reasoning_tokens, s.cost_usd "
    f"from (select from_json(line, '{_SPAN_RECORD}') as s from _fm_span_lines)")


def insert_records(con: duckdb.DuckDBPyConnection, run_id: str, workflow_id: str | None,
                   records: Iterable[JournalRecord], limit: int = MAX_CHARS,
                   texts: Mapping[int, bytes] | None = None) -> None:
    """Insert the spans of journal ``records`` (see :func:`insert_split`)."""
    nodes, spans, _ = split_records(records)
    insert_split(con, run_id, workflow_id, nodes, spans, limit, texts)


def insert_split(con: duckdb.DuckDBPyConnection, run_id: str | None, workflow_id: str | None,
                 nodes: list[NodeRecord], spans: list[SpanRecord],
                 limit: int = MAX_CHARS, texts: Mapping[int, bytes] | None = None,
                 replace: bool = False, new_run: bool = False) -> None:
    """Insert the spans of node and span records: node records through Arrow columns built
    here, span records (the bulk: LLM, tool, agent calls) as JSON lines that DuckDB parses
    itself (in C++, on every core), about 1.5x the rows per second of building them in Python.
    ``texts`` has span records' JSON as the journal wrote it, by ``seq``: reused as is.
    ``replace`` drops stored copies of the span records first (a standalone trace's journal
    ingested again after a crash); ``run_id`` None: spans outside runs. ``new_run``: the run
    was created by this ingest, so none of its spans is stored yet. A short run's spans (up to
    :data:`~fm_lab.store.columns.SMALL` of each kind) go in one statement from Python columns,
    which costs less than planning DuckDB's JSON parse."""
    nodes = [r for r in nodes if r.get("span")]
    known = texts or {}
    replaced = [r["span"] for r in spans if r["kind"] == "workflow" or replace]
    if replaced and not new_run:
        replace_spans(con, replaced, workflow_only=not replace)
    if len(spans) <= SMALL and len(nodes) <= SMALL:
        # a short run's spans, node and span records alike, in one statement from Python
        # columns: DuckDB's from_json costs ~5 ms to plan whatever the rows, ~3x the insert
        insert_columns(con, short_columns(run_id, workflow_id, nodes, spans, known, limit))
        return
    cols = rows_from_records(run_id, workflow_id, nodes, limit) if nodes else None
    if not spans:
        if cols is not None:
            insert_columns(con, cols)
        return
    lines = [known.get(r.get("seq", -1)) or dumpb(r) for r in spans]
    params: dict[str, Any] = {"run": run_id, "workflow": workflow_id, "limit": limit}
    if cols is not None:
        insert_columns(con, cols)
    import pyarrow as pa

    text = pa.array(lines, pa.binary()).cast(pa.string())
    table = pa.Table.from_batches(  # Arrow batches of a few thousand: parsed in parallel
        [pa.record_batch([text.slice(i, _PARSE_CHUNK)], names=["line"])
         for i in range(0, len(text), _PARSE_CHUNK)])
    con.register("_fm_span_lines", table)
    try:
        con.execute(_INSERT_SPAN_RECORDS, params).fetchall()
    finally:
        con.unregister("_fm_span_lines")


def short_columns(run_id: str | None, workflow_id: str | None, nodes: list[NodeRecord],
                  spans: list[SpanRecord], texts: Mapping[int, bytes] | None = None,
                  limit: int = MAX_CHARS) -> dict[str, list[Any]]:
    """The span columns of a few node records (those with a span) and span records, each
    span record as the journal wrote it (``texts``, by ``seq``) where known."""
    known = texts or {}
    as_journaled = [json.loads(known[r["seq"]]) if r.get("seq") in known else r for r in spans]
    return rows_from_records(run_id, workflow_id,
                             [*(n for n in nodes if n.get("span")), *as_journaled], limit)


def replace_spans(con: duckdb.DuckDBPyConnection, span_ids: list[str],
                  workflow_only: bool = True) -> None:
    """Drop the stored copies of these (workflow) spans: a run has one workflow span,
    rewritten on resume."""
    if span_ids:
        only = "kind = 'workflow' and " if workflow_only else ""
        con.execute(f"delete from spans where {only}span_id in (select unnest(?::varchar[]))",
                    [span_ids])


_INSERT_SPANS = (
    "insert into spans select trace_id, span_id, parent_span_id, run_id, kind, name, "
    "entity_id, workflow_id, node_id, agent, resource_id, to_timestamp(started), "
    "to_timestamp(ended), (ended - started) * 1000, status, input, output, input_size, "
    "output_size, error, attributes, events, model, provider, input_tokens, "
    "output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd from {source}")


def insert_columns(con: duckdb.DuckDBPyConnection, cols: dict[str, list[Any]]) -> None:
    """Append spans given as column lists (:data:`COLUMNS`, see :func:`rows_from_records`)."""
    if not cols["span_id"]:
        return
    with relation(con, "_fm_spans", cols, TYPES) as (source, params):
        con.execute(_INSERT_SPANS.format(source=source), params).fetchall()


def insert_spans(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """Append an Arrow table of spans (columns as :data:`COLUMNS`); a workflow span being
    rewritten is dropped first by :func:`replace_spans`."""
    if table.num_rows == 0:
        return
    con.register("_fm_spans", table)
    try:
        con.execute(_INSERT_SPANS.format(source="_fm_spans")).fetchall()
    finally:
        con.unregister("_fm_spans")
