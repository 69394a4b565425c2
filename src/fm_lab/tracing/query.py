"""Traces, usage and costs as pandas DataFrames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.base import RunStore, SqlStore

_SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, run_id, kind, name, entity_id, workflow_id, node_id, "
    "agent, resource_id, started_at, ended_at, duration_ms, status, input, output, input_size, "
    "output_size, error, attributes, model, provider, input_tokens, output_tokens, "
    "cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd")
_GROUPS = {
    "model": "model", "provider": "provider", "run": "root_run_id", "workflow": "workflow_id",
    "node": "node_id", "agent": "agent", "day": "day", "resource": "resource_id",
    "trace": "trace_id",
}


def _store(store: RunStore | None, what: str = "trace queries") -> SqlStore:
    from fm_lab.store.base import sql_store

    if store is not None:
        return sql_store(store, what)
    from fm_lab.store.default import default_store

    found = default_store()
    found.recover_journals()
    return sql_store(found, what)


def as_utc(value: str | dt.datetime | dt.date | None) -> dt.datetime | None:
    """A time filter as an aware datetime: ISO text or a date accepted, naive taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, op, value in (
        ("kind", "=", filters.get("kind")), ("entity_id", "=", filters.get("entity")),
        ("status", "=", filters.get("status")), ("run_id", "=", filters.get("run_id")),
        ("started_at", ">=", as_utc(filters.get("since"))),
        ("started_at", "<", as_utc(filters.get("until"))),
    ):
        if value is not None:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    return (" where " + " and ".join(clauses)) if clauses else "", params


_NEWEST_FIRST = " order by started_at desc nulls last, span_id desc"
"""The order of ``traces()``: total (span ids are unique), so pages never overlap or skip."""


def traces(*, kind: str | None = None, entity: str | None = None, status: str | None = None,
           since: str | dt.datetime | None = None, until: str | dt.datetime | None = None,
           run_id: str | None = None, limit: int | None = 1000, offset: int = 0,
           cursor: str | None = None, store: RunStore | None = None) -> pd.DataFrame:
    """Spans, newest first (ties by span id), filtered by kind (workflow, node, item,
    attempt, agent, llm, tool, ...), entity, status, time and run.

    Paging, for UIs and exports: ``limit`` rows from ``offset``, or from ``cursor``, the
    ``next_cursor`` in the ``attrs`` of the page before (None after the last page). A cursor
    stays put while new spans arrive, where an offset would shift by them.

    >>> fm_lab.traces(kind="node", status="error", since="2026-11-01")  # doctest: +SKIP
    >>> page = fm_lab.traces(limit=100); more = fm_lab.traces(limit=100,  # doctest: +SKIP
    ...     cursor=page.attrs["next_cursor"])
    """
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError(f"traces() needs offset >= 0 and limit >= 0 (got offset={offset}, "
                         f"limit={limit})")
    where, params = _where({"kind": kind, "entity": entity, "status": status, "since": since,
                            "until": until, "run_id": run_id})
    if cursor is not None:
        started, span_id = _read_cursor(cursor)
        where += (" and " if where else " where ") + (
            "(started_at < ? or (started_at = ? and span_id < ?))")
        params += [started, started, span_id]
    page = f" limit {int(limit)}" if limit else ""
    page += f" offset {int(offset)}" if offset else ""
    frame = _store(store).sql(
        f"select {_SPAN_COLUMNS} from all_spans{where}{_NEWEST_FIRST}{page}", params)
    full = bool(limit) and len(frame) == limit
    frame.attrs["next_cursor"] = _cursor(frame.iloc[-1]) if full else None
    return frame


def _cursor(row: Any) -> str | None:
    """The cursor after ``row`` (None for a span without a start time: page by offset)."""
    import base64
    import json

    import pandas as pd

    started = row["started_at"]
    if started is None or pd.isna(started):
        return None
    text = json.dumps([pd.Timestamp(started).isoformat(), str(row["span_id"])])
    return base64.urlsafe_b64encode(text.encode()).decode()


def _read_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """The (started_at, span_id) a cursor of :func:`traces` points after."""
    import base64
    import binascii
    import json

    try:
        started, span_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return as_utc(str(started)) or dt.datetime.now(dt.UTC), str(span_id)
    except (ValueError, TypeError, binascii.Error):
        raise ValueError(f"{cursor[:40]!r} is not a cursor of fm_lab.traces() (take "
                         "page.attrs['next_cursor'] of the page before)") from None


def trace(run_id: str, store: RunStore | None = None) -> pd.DataFrame:
    """Every span of a run's trace (its child runs included), or of the trace with this id
    (a standalone agent or LLM call, a ``traced`` block), in tree order, with ``depth``."""
    import pandas as pd

    store = _store(store)
    frame = store.sql(
        f"select {_SPAN_COLUMNS} from all_spans where trace_id = coalesce("
        "(select trace_id from all_runs where run_id = ?), ?) order by started_at",
        [run_id, run_id])
    if frame.empty:
        return frame.assign(depth=pd.Series(dtype="int64"))
    ids = set(frame["span_id"])
    children: dict[Any, list[int]] = {}
    for index, parent in enumerate(frame["parent_span_id"]):
        children.setdefault(parent if parent in ids else None, []).append(index)
    order: list[int] = []
    depth: list[int] = []
    stack = [(i, 0) for i in reversed(children.get(None, []))]
    while stack:
        index, level = stack.pop()
        order.append(index)
        depth.append(level)
        kids = children.get(frame.at[index, "span_id"], [])
        stack.extend((kid, level + 1) for kid in reversed(kids))
    result = frame.iloc[order].reset_index(drop=True)
    result.insert(0, "depth", depth)
    return result


# the spans usage() counts: model calls and voice calls (fm_lab.llm.voice), whose audio
# seconds and characters are span attributes and whose cost is priced when they are made
_MODEL_KINDS = "'llm', 'speech', 'transcription'"
_VOICE_SUMS = ", ".join(
    f"sum(coalesce((attributes::json->>'fm_lab.{name}')::{kind}, 0))::{kind} as {name}"
    for name, kind in (("audio_seconds", "float8"), ("characters", "bigint")))


def usage(by: str | Sequence[str] = ("model",), *, since: str | dt.datetime | None = None,
          until: str | dt.datetime | None = None, price_as: str | None = None,
          run_id: str | None = None, batch_id: str | None = None,
          store: RunStore | None = None) -> pd.DataFrame:
    """Tokens, calls and cost of LLM calls (and of voice calls: their ``audio_seconds`` and
    ``characters``) grouped ``by`` model, provider, run (root run:
    child runs and sub-agents roll up into it), workflow, node, agent, day, resource or trace;
    ``batch_id`` keeps the calls of one batch (:mod:`fm_lab.batch`).

    ``price_as="gpt-4o-mini"`` tells what the same calls would have cost on that model.
    """
    from fm_lab.tracing.pricing import price_frame

    groups = [by] if isinstance(by, str) else list(by)
    unknown = [g for g in groups if g not in _GROUPS]
    if unknown:
        raise ValueError(f"cannot group usage by {unknown}; choose from {sorted(_GROUPS)}")
    store = _store(store)
    where, params = _where({"since": since, "until": until})
    where = (where + " and " if where else " where ") + f"kind in ({_MODEL_KINDS})"
    if batch_id is not None:
        where += " and trace_id in (select trace_id from batch_items where batch_id = ?)"
        params.append(batch_id)
    roots = ("with recursive _roots as (select run_id, run_id as root_run_id from all_runs "
             "where parent_run_id is null union all select r.run_id, t.root_run_id "
             "from all_runs r join _roots t on r.parent_run_id = t.run_id) ")
    if run_id is not None:
        where += (" and run_id in (select run_id from (" + roots +
                  "select * from _roots) where root_run_id = ?)")
        params.append(run_id)
    models = store.sql(f"select distinct model from all_spans{where} and model is not null",
                       params)["model"].tolist()
    prices = price_frame(models, price_as)
    select = ", ".join(f"s.{_GROUPS[g]} as {g}" for g in groups)
    group = ", ".join(f"s.{_GROUPS[g]}" for g in groups)
    with store.connection() as con:
        con.register("_fm_prices", prices)
        try:
            frame: pd.DataFrame = con.execute(
                roots + ", s as (select spans.*, coalesce(_roots.root_run_id, spans.run_id) "
                "as root_run_id, "
                f"date_trunc('day', started_at) as day from all_spans spans left join _roots using "
                f"(run_id){where}) "
                f"select {select}, count(*) as calls, "
                "sum(coalesce(input_tokens, 0))::bigint as input_tokens, "
                "sum(coalesce(output_tokens, 0))::bigint as output_tokens, "
                "sum(coalesce(cached_tokens, 0))::bigint as cached_tokens, "
                "sum(coalesce(cache_write_tokens, 0))::bigint as cache_write_tokens, "
                "sum(coalesce(reasoning_tokens, 0))::bigint as reasoning_tokens, "
                f"{_VOICE_SUMS}, "
                "sum(case when s.kind = 'llm' then coalesce("
                "(coalesce(input_tokens, 0) - coalesce(cached_tokens, 0)"
                " - coalesce(cache_write_tokens, 0)) * p.input_price"
                " + coalesce(cached_tokens, 0) * p.cache_read_price"
                " + coalesce(cache_write_tokens, 0) * p.cache_write_price"
                " + coalesce(output_tokens, 0) * p.output_price, "
                + ("0" if price_as else "s.cost_usd, 0") + ") else "
                + ("0" if price_as else "coalesce(s.cost_usd, 0)") + " end) as cost_usd, "
                "bool_and(case when s.kind = 'llm' then p.model is not null "
                "else s.cost_usd is not null end) as priced "
                f"from s left join _fm_prices p on p.model = s.model group by {group} "
                f"order by cost_usd desc, calls desc", params).df()
        finally:
            con.unregister("_fm_prices")
    return frame


def slowest(n: int = 10, kind: str | None = "node", store: RunStore | None = None) -> pd.DataFrame:
    """The ``n`` longest spans (of ``kind``; None for all kinds)."""
    where, params = _where({"kind": kind})
    return _store(store).sql(
        f"select {_SPAN_COLUMNS} from all_spans{where} order by duration_ms desc nulls last "
        f"limit {int(n)}", params)


def errors(since: str | dt.datetime | None = None, limit: int | None = 100,
           store: RunStore | None = None) -> pd.DataFrame:
    """Failed spans, newest first, with their error."""
    return traces(status="error", since=since, limit=limit, store=store)


def sql(query: str, params: list[Any] | None = None, store: RunStore | None = None) -> pd.DataFrame:
    """Any SQL over the store (tables: runs, node_executions, spans, suspensions, steps,
    workflows, batches, batch_items; views all_runs, all_node_executions, all_spans add the
    Parquet shards of Dask batches)."""
    return _store(store).sql(query, params)
