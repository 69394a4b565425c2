"""The store side of a batch: the ``batches`` and ``batch_items`` rows and each item's span."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.store.codec import dumps, loads
from fm_lab.store.ids import validate_run_id

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.base import RunStore, SqlStore

DONE = "succeeded"


def _hex(*parts: str, size: int) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:size]


def new_batch_id() -> str:
    """A sortable, unique batch id."""
    from fm_lab.engine.api import new_run_id

    return "b" + new_run_id()


@dataclass
class Item:
    """One item of a batch: its key, parameters and (after it ran) its result."""

    batch_id: str
    key: str
    index: int
    parameters: dict[str, Any]
    status: str = "pending"
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    outputs: Any = None
    error: dict[str, Any] | None = None
    error_cell: int | None = None
    output_path: str | None = None

    @property
    def trace_id(self) -> str:
        """The item's own trace: its span and every run started for it (stable across
        retries, so a resumed run stays in it)."""
        return _hex(self.batch_id, self.key, size=32)

    @property
    def span_id(self) -> str:
        return _hex(self.batch_id, self.key, "item", size=16)

    @property
    def run_id(self) -> str:
        """The run of a workflow item (retries resume it)."""
        return f"{self.batch_id}-{_hex(self.key, size=10)}"

    @property
    def traceparent(self) -> str:
        """W3C traceparent of the item span (handed to notebook kernels)."""
        return f"00-{self.trace_id}-{self.span_id}-01"

    @property
    def duration_ms(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started) * 1000


def ensure_batch(store: SqlStore, batch_id: str, kind: str, target: str, executor: str,
                 folder: Path | None) -> None:
    """Create the batch row, or check that ``batch_id`` was a batch of the same kind (and is
    a safe id: it names folders)."""
    validate_run_id(batch_id, "batch id")
    with store.connection() as con:
        row = con.execute("select kind, target from batches where batch_id = ?",
                          [batch_id]).fetchone()
        if row is None:
            con.execute(
                "insert into batches (batch_id, kind, target, executor, folder, trace_id) "
                "values (?, ?, ?, ?, ?, ?)",
                [batch_id, kind, target, executor, str(folder) if folder else None,
                 _hex(batch_id, size=32)])
        elif row[0] != kind:
            raise ValueError(f"batch {batch_id!r} is a {row[0]} batch ({row[1]}), not a {kind} "
                             "batch; choose another batch id")


def load_items(store: SqlStore, batch_id: str, wanted: list[tuple[str, dict[str, Any]]]
               ) -> list[Item]:
    """The batch's items in order, with what the store knows of each; an item key whose
    stored parameters differ from ``wanted`` is an error (that would mix two batches)."""
    with store.connection() as con:
        rows = con.execute(
            "select item_key, parameters, status, attempts, "
            "extract(epoch from started_at)::float8, extract(epoch from ended_at)::float8, "
            "outputs, error, error_cell, output_path from batch_items where batch_id = ?",
            [batch_id]).fetchall()
    stored = {r[0]: r for r in rows}
    items = []
    for index, (key, parameters) in enumerate(wanted):
        item = Item(batch_id, key, index, parameters)
        row = stored.get(key)
        if row is not None:
            before = loads(row[1])
            if loads(dumps(parameters)) != before:
                raise ValueError(
                    f"batch {batch_id!r} item {key!r} ran with parameters {before!r}, now "
                    f"{parameters!r}; resume with the same items or choose another batch id")
            (item.status, item.attempts, item.started, item.ended) = row[2:6]
            item.outputs, item.error = loads(row[6]), loads(row[7])
            item.error_cell, item.output_path = row[8], row[9]
        items.append(item)
    return items


def save_item(store: SqlStore, item: Item, kind: str, target: str,
              run_id: str | None = None) -> None:
    """Upsert one item's row and replace its span (see :func:`save_items`)."""
    save_items(store, [(item, run_id)], kind, target)


def save_items(store: SqlStore, entries: list[tuple[Item, str | None]], kind: str,
               target: str) -> None:
    """Upsert the items' rows and replace their spans (kind ``batch_item``; none while an item
    is ``running``) in one transaction. ``entries``: ``(item, run_id)``."""
    import pyarrow as pa

    from fm_lab.store.span_table import arrow_table, insert_spans

    if not entries:
        return
    items = [item for item, _ in entries]
    rows = pa.table({
        "batch_id": [i.batch_id for i in items], "item_key": [i.key for i in items],
        "item_index": pa.array([i.index for i in items], pa.int32()),
        "parameters": [dumps(i.parameters) for i in items],
        "status": [i.status for i in items],
        "attempts": pa.array([i.attempts for i in items], pa.int32()),
        "started": pa.array([i.started for i in items], pa.float64()),
        "ended": pa.array([i.ended for i in items], pa.float64()),
        "duration_ms": pa.array([i.duration_ms for i in items], pa.float64()),
        "run_id": pa.array([run_id for _, run_id in entries], pa.string()),
        "trace_id": [i.trace_id for i in items], "span_id": [i.span_id for i in items],
        "outputs": pa.array([_json_or_none(i.outputs) for i in items], pa.string()),
        "error": pa.array([dumps(i.error) if i.error else None for i in items], pa.string()),
        "error_cell": pa.array([i.error_cell for i in items], pa.int32()),
        "output_path": pa.array([i.output_path for i in items], pa.string()),
    })
    spans = arrow_table(_span_columns([e for e in entries if e[0].status != "running"],
                                      kind, target))
    from fm_lab.store.transaction import transaction

    with store.connection() as con:
        con.register("_fm_items", rows)
        try:
            with transaction(con):
                con.execute("delete from batch_items where (batch_id, item_key) in "
                            "(select batch_id, item_key from _fm_items)")
                con.execute(
                    "insert into batch_items select batch_id, item_key, item_index, "
                    "parameters, status, attempts, to_timestamp(started), to_timestamp(ended), "
                    "duration_ms, run_id, trace_id, span_id, outputs, error, error_cell, "
                    "output_path from _fm_items")
                con.execute("delete from spans where kind = 'batch_item' and span_id in "
                            "(select span_id from _fm_items)")
                insert_spans(con, spans)
        finally:
            con.unregister("_fm_items")


def _json_or_none(value: Any) -> str | None:
    return dumps(value) if value is not None else None


def _span_columns(entries: list[tuple[Item, str | None]], kind: str, target: str
                  ) -> dict[str, list[Any]]:
    """Spans-table columns of the items' ``batch_item`` spans (roots of the items' traces)."""
    cols: dict[str, list[Any]] = {name: [None] * len(entries) for name in _SPAN_NONE}
    items = [item for item, _ in entries]
    now = time.time()
    ended = [i.ended if i.ended is not None else now for i in items]
    cols.update(
        trace_id=[i.trace_id for i in items], span_id=[i.span_id for i in items],
        run_id=[run_id for _, run_id in entries], kind=["batch_item"] * len(items),
        name=[f"{i.batch_id}[{i.key}]" for i in items], entity_id=[target] * len(items),
        started=[i.started if i.started is not None else e for i, e in zip(items, ended,
                                                                           strict=True)],
        ended=ended, status=["ok" if i.status == DONE else "error" for i in items],
        input=[dumps(i.parameters) for i in items],
        output=[_json_or_none(i.outputs) for i in items],
        error=[dumps(i.error) if i.error else None for i in items],
        attributes=[dumps({"batch_id": i.batch_id, "item_key": i.key, "kind": kind,
                           "output_path": i.output_path, "error_cell": i.error_cell})
                    for i in items])
    return cols


_SPAN_NONE = ("parent_span_id", "workflow_id", "node_id", "agent", "resource_id",
              "input_size", "output_size", "events", "model", "provider", "input_tokens",
              "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens",
              "cost_usd")


def status(batch_id: str, store: RunStore | None = None) -> pd.DataFrame:
    """One row per item of a batch: key, parameters, status (``interrupted``: left
    ``running`` by a process that died), attempts, duration, run id, error, failing cell,
    output path, and the tokens and cost of its model calls."""
    from fm_lab.store.base import sql_store
    from fm_lab.store.default import default_store
    from fm_lab.tracing.query import usage

    store = sql_store(store or default_store(), "batch status")
    frame = store.sql(
        "select item_key, item_index, parameters, status, attempts, started_at, ended_at, "
        "duration_ms, run_id, trace_id, outputs, error, error_cell, output_path "
        "from batch_items where batch_id = ? order by item_index", [batch_id])
    if frame.empty:
        known = store.sql("select count(*) as n from batches where batch_id = ?", [batch_id])
        if int(known["n"].iloc[0]) == 0:
            raise KeyError(f"no batch {batch_id!r} in {store.path}")
    for column in ("parameters", "outputs", "error"):
        frame[column] = [loads(v) if isinstance(v, str) else None for v in frame[column]]
    running = frame["status"] == "running"
    if running.any():
        from fm_lab.batch.liveness import INTERRUPTED, is_live

        if not is_live(store, batch_id):  # left running by a process that died
            frame.loc[running, "status"] = INTERRUPTED
    spent = usage("trace", batch_id=batch_id, store=store)
    spent = spent.rename(columns={"trace": "trace_id"})[
        ["trace_id", "input_tokens", "output_tokens", "cost_usd"]]
    merged = frame.merge(spent, on="trace_id", how="left")
    for column in ("input_tokens", "output_tokens"):
        merged[column] = merged[column].fillna(0).astype("int64")
    merged["cost_usd"] = merged["cost_usd"].fillna(0.0)
    merged.attrs["batch_id"] = batch_id
    return merged
