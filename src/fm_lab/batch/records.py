"""The store side of a batch: the ``batches`` and ``batch_items`` rows and each item's span."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.store.codec import dumps, loads

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.duckdb_store import Store

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
    extra: dict[str, Any] = field(default_factory=dict)

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


def ensure_batch(store: Store, batch_id: str, kind: str, target: str, executor: str,
                 folder: Path | None) -> None:
    """Create the batch row, or check that ``batch_id`` was a batch of the same kind."""
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


def load_items(store: Store, batch_id: str, wanted: list[tuple[str, dict[str, Any]]]
               ) -> list[Item]:
    """The batch's items in order, with what the store knows of each; an item key whose
    stored parameters differ from ``wanted`` is an error (that would mix two batches)."""
    with store.connection() as con:
        rows = con.execute(
            "select item_key, parameters, status, attempts, epoch(started_at), epoch(ended_at), "
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


def save_item(store: Store, item: Item, kind: str, target: str,
              run_id: str | None = None) -> None:
    """Upsert the item's row and replace its span (kind ``batch_item``) in one transaction."""
    from fm_lab.store.span_table import arrow_table, insert_spans

    ended = item.ended if item.ended is not None else time.time()
    started = item.started if item.started is not None else ended
    span: dict[str, list[Any]] = {name: [None] for name in _SPAN_NONE}
    span.update(
        trace_id=[item.trace_id], span_id=[item.span_id], run_id=[run_id], kind=["batch_item"],
        name=[f"{item.batch_id}[{item.key}]"], entity_id=[target], started=[started],
        ended=[ended], status=["ok" if item.status == DONE else "error"],
        input=[dumps(item.parameters)],
        output=[dumps(item.outputs) if item.outputs is not None else None],
        error=[dumps(item.error) if item.error else None],
        attributes=[dumps({"batch_id": item.batch_id, "item_key": item.key, "kind": kind,
                           "output_path": item.output_path, "error_cell": item.error_cell})])
    with store.connection() as con:
        con.execute("begin")
        try:
            con.execute("delete from batch_items where batch_id = ? and item_key = ?",
                        [item.batch_id, item.key])
            con.execute(
                "insert into batch_items values (?, ?, ?, ?, ?, ?, "
                "case when ? is null then null else to_timestamp(?) end, "
                "case when ? is null then null else to_timestamp(?) end, ?, ?, ?, ?, ?, ?, ?, ?)",
                [item.batch_id, item.key, item.index, dumps(item.parameters), item.status,
                 item.attempts, item.started, item.started, item.ended, item.ended,
                 item.duration_ms, run_id, item.trace_id, item.span_id,
                 dumps(item.outputs) if item.outputs is not None else None,
                 dumps(item.error) if item.error else None, item.error_cell, item.output_path])
            con.execute("delete from spans where span_id = ? and trace_id = ?",
                        [item.span_id, item.trace_id])
            if item.status != "running":
                insert_spans(con, arrow_table(span))
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise


_SPAN_NONE = ("parent_span_id", "workflow_id", "node_id", "agent", "resource_id",
              "input_size", "output_size", "events", "model", "provider", "input_tokens",
              "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens",
              "cost_usd")


def status(batch_id: str, store: Store | None = None) -> pd.DataFrame:
    """One row per item of a batch: key, parameters, status, attempts, duration, run id,
    error, failing cell, output path, and the tokens and cost of its model calls."""
    from fm_lab.engine.api import default_store
    from fm_lab.tracing.query import usage

    store = store or default_store()
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
    spent = usage("trace", batch_id=batch_id, store=store)
    spent = spent.rename(columns={"trace": "trace_id"})[
        ["trace_id", "input_tokens", "output_tokens", "cost_usd"]]
    merged = frame.merge(spent, on="trace_id", how="left")
    for column in ("input_tokens", "output_tokens"):
        merged[column] = merged[column].fillna(0).astype("int64")
    merged["cost_usd"] = merged["cost_usd"].fillna(0.0)
    return merged
