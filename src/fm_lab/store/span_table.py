"""Turning journal records into rows of the ``spans`` table (one Arrow batch per ingest)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from fm_lab.store.codec import dumps

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


def _clip(value: Any, limit: int) -> tuple[str | None, int | None]:
    """JSON text of ``value``, cut to ``limit`` characters (as a JSON string), and its size."""
    if value is None:
        return None, None
    text = dumps(value)
    if len(text) <= limit:
        return text, len(text)
    return dumps(text[:limit] + "…"), len(text)


def rows_from_records(run_id: str, workflow_id: str | None, records: list[dict[str, Any]],
                      limit: int = MAX_CHARS) -> dict[str, list[Any]]:
    """Column lists for the spans of ``records``: node records (which carry their span) and
    span records."""
    cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for r in records:
        kind = r["k"]
        if kind == "node":
            if not r.get("span"):
                continue
            path = r["node"]
            row = {
                "trace_id": r["trace"], "span_id": r["span"], "parent_span_id": r.get("pspan"),
                "run_id": run_id, "kind": "item" if path.endswith("]") else "node",
                "name": path, "entity_id": r.get("entity"), "workflow_id": workflow_id,
                "node_id": path, "started": r.get("started"), "ended": r.get("ended"),
                "status": _NODE_STATUS.get(r["status"], r["status"]),
                "attributes": {"node_type": r.get("type"), "attempts": r.get("attempts")},
                "events": r.get("events"),
            }
            src_in, src_out = r.get("input"), r.get("output")
        elif kind == "span":
            row = {
                "trace_id": r["trace"], "span_id": r["span"], "parent_span_id": r.get("parent"),
                "run_id": r.get("run") or run_id, "kind": r["kind"], "name": r.get("name"),
                "entity_id": r.get("entity"), "workflow_id": r.get("workflow") or workflow_id,
                "node_id": r.get("node"), "agent": r.get("agent"),
                "resource_id": r.get("resource"), "started": r.get("started"),
                "ended": r.get("ended"), "status": r.get("status"),
                "attributes": r.get("attrs"), "events": r.get("events"),
                "model": r.get("model"), "provider": r.get("provider"),
                "input_tokens": r.get("input_tokens"), "output_tokens": r.get("output_tokens"),
                "cached_tokens": r.get("cached_tokens"),
                "cache_write_tokens": r.get("cache_write_tokens"),
                "reasoning_tokens": r.get("reasoning_tokens"), "cost_usd": r.get("cost_usd"),
            }
            src_in, src_out = r.get("input"), r.get("output")
        else:
            continue
        row["input"], row["input_size"] = _clip(src_in, limit)
        row["output"], row["output_size"] = _clip(src_out, limit)
        error = r.get("error")
        row["error"] = dumps(error) if error else None
        for key in ("attributes", "events"):
            value = row.get(key)
            row[key] = dumps(value) if value else None
        for name in COLUMNS:
            cols[name].append(row.get(name))
    return cols


def arrow_table(cols: dict[str, list[Any]]) -> pa.Table:
    """An Arrow table with the spans columns, typed."""
    import pyarrow as pa

    arrays = {}
    for name in COLUMNS:
        if name in _INTS:
            arrays[name] = pa.array(cols[name], pa.int64())
        elif name in _FLOATS:
            arrays[name] = pa.array(cols[name], pa.float64())
        else:
            arrays[name] = pa.array(cols[name], pa.string())
    return pa.table(arrays)


def insert_spans(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """Append an Arrow table of spans (columns as :data:`COLUMNS`)."""
    if table.num_rows == 0:
        return
    con.register("_fm_spans", table)
    try:
        con.execute("delete from spans where kind = 'workflow' and span_id in "
                    "(select span_id from _fm_spans where kind = 'workflow')")
        con.execute(
            "insert into spans select trace_id, span_id, parent_span_id, run_id, kind, name, "
            "entity_id, workflow_id, node_id, agent, resource_id, to_timestamp(started), "
            "to_timestamp(ended), (ended - started) * 1000, status, input, output, input_size, "
            "output_size, error, attributes, events, model, provider, input_tokens, "
            "output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd "
            "from _fm_spans").fetchall()
    finally:
        con.unregister("_fm_spans")
