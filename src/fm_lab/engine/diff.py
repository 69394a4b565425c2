"""Two runs side by side: per node path, status, output (with a readable diff), duration,
tokens and cost, and whether the second run reused, re-ran, edited or newly ran the node.

Model usage comes from each run's ``llm`` spans (:func:`llm_spans`), read the same way from
every store: SQL on DuckDB and PostgreSQL, the span records of a ``MemoryStore``.
"""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Any

from fm_lab.engine.fork import FORK_STATE
from fm_lab.engine.run import Run
from fm_lab.store import codec
from fm_lab.store.base import SQL, has, sql_store
from fm_lab.store.default import default_store
from fm_lab.store.ids import validate_run_id

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.base import RunSnapshot, RunStore
    from fm_lab.store.records import StoredNode

DIFF_COLUMNS = ("path", "node_id", "change", "changed", "status_a", "status_b", "output_a",
                "output_b", "output_diff", "duration_ms_a", "duration_ms_b", "tokens_a",
                "tokens_b", "cost_a", "cost_b")
"""The columns of :func:`diff`, in order."""
_MAX_DIFF_LINES = 40


def snapshots(run_a: Run | str, run_b: Run | str, store: RunStore | None
              ) -> tuple[RunSnapshot, RunSnapshot, RunStore]:
    """Both runs as stored (a :class:`Run` brings its store)."""
    if store is None:
        store = next((r.store for r in (run_a, run_b) if isinstance(r, Run)), None)
    store = store or default_store()
    ids = [r.run_id if isinstance(r, Run) else validate_run_id(r) for r in (run_a, run_b)]
    return store.load_run(ids[0]), store.load_run(ids[1]), store


def diff(run_a: Run | str, run_b: Run | str, store: RunStore | None = None,
         changed_only: bool = False) -> pd.DataFrame:
    """One row per node path of either run (``a``, ``loop[3]/x``): ``status_a/_b``,
    ``output_a/_b`` and ``output_diff`` (a unified diff of the texts or of the indented JSON;
    empty when equal), ``duration_ms``, ``tokens`` and ``cost`` (USD) of each run's own model
    calls at that path, ``changed`` (status or output differ) and ``change``: how ``run_b``
    got the result, ``reused`` (from ``run_a``, without running), ``edited`` (a fork's
    edit), ``re-run``, ``new`` (only in ``run_b``) or ``removed`` (only in ``run_a``).

    >>> fm_lab.diff(parent, parent.fork("draft", output="shorter"))  # doctest: +SKIP
    """
    import pandas as pd

    a, b, store = snapshots(run_a, run_b, store)
    usage_a, usage_b = _usage(store, a.run_id), _usage(store, b.run_id)
    rows = []
    paths = [p for p in dict.fromkeys([*a.nodes, *b.nodes]) if not p.endswith(FORK_STATE)]
    for path in paths:
        left, right = a.nodes.get(path), b.nodes.get(path)
        out_a = left["output"] if left else None
        out_b = right["output"] if right else None
        status_a = left["status"] if left else None
        status_b = right["status"] if right else None
        changed = status_a != status_b or codec.canonical(out_a) != codec.canonical(out_b)
        rows.append({
            "path": path, "node_id": path.rsplit("/", 1)[-1].split("[")[0].split(".")[0],
            "change": _change(a.run_id, b.run_id, left, right), "changed": changed,
            "status_a": status_a, "status_b": status_b, "output_a": out_a, "output_b": out_b,
            "output_diff": text_diff(out_a, out_b) if changed else "",
            "duration_ms_a": _duration(left), "duration_ms_b": _duration(right),
            "tokens_a": usage_a.get(path, (0, 0.0))[0], "tokens_b": usage_b.get(path, (0, 0.0))[0],
            "cost_a": usage_a.get(path, (0, 0.0))[1], "cost_b": usage_b.get(path, (0, 0.0))[1],
        })
    frame = pd.DataFrame(rows, columns=list(DIFF_COLUMNS))
    return frame[frame["changed"]].reset_index(drop=True) if changed_only else frame


def _change(a_id: str, b_id: str, left: StoredNode | None, right: StoredNode | None) -> str:
    if right is None:
        return "removed"
    if left is None:
        return "new"
    for record, other in ((right, a_id), (left, b_id)):
        source = record.get("cached_from") or {}
        if source.get("run_id") == other:
            return "edited" if source.get("edit") else "reused"
    return "re-run"


def _duration(record: StoredNode | None) -> float | None:
    if record is None or record["started"] is None or record["ended"] is None:
        return None
    return (float(record["ended"]) - float(record["started"])) * 1000


def text_diff(before: Any, after: Any) -> str:
    """A unified diff of two outputs: of the texts, else of their indented, sorted JSON."""
    def lines(value: Any) -> list[str]:
        if isinstance(value, str):
            return value.splitlines() or [""]
        return json.dumps(value, indent=1, sort_keys=True, default=str).splitlines()

    found = list(difflib.unified_diff(lines(before), lines(after), "a", "b", n=1,
                                      lineterm=""))[2:]
    if len(found) > _MAX_DIFF_LINES:
        found = [*found[:_MAX_DIFF_LINES], f"... {len(found) - _MAX_DIFF_LINES} more lines"]
    return "\n".join(found)


def _usage(store: RunStore, run_id: str) -> dict[str, tuple[int, float]]:
    """Tokens and cost of the run's own model calls, per node path."""
    found: dict[str, tuple[int, float]] = {}
    for span in llm_spans(store, run_id, children=False):
        tokens, cost = found.get(span["node"] or "", (0, 0.0))
        found[span["node"] or ""] = (
            tokens + int(span["input_tokens"] or 0) + int(span["output_tokens"] or 0),
            cost + float(span["cost_usd"] or 0.0))
    return found


_SPAN_KEYS = ("run", "node", "model", "status", "input", "output", "input_tokens",
              "output_tokens", "cost_usd")


def llm_spans(store: RunStore, run_id: str, children: bool = True) -> list[dict[str, Any]]:
    """The ``llm`` spans of a run (and of its child runs), oldest first, as dicts with
    ``run``, ``node`` (the node path), ``model``, ``status``, ``input``, ``output`` (decoded)
    and usage (``input_tokens``, ``output_tokens``, ``cost_usd``)."""
    if has(store, SQL):
        where = "(run_id = ? or run_id like ?)" if children else "run_id = ?"
        params = [run_id, run_id + ".%"] if children else [run_id]
        frame = sql_store(store, "llm spans").sql(
            "select run_id as run, node_id as node, model, status, input, output, input_tokens,"
            f" output_tokens, cost_usd from all_spans where kind = 'llm' and {where} "
            "order by started_at", params)
        rows = [dict(zip(_SPAN_KEYS, values, strict=True))
                for values in frame.itertuples(index=False, name=None)]
        for row in rows:
            row["input"], row["output"] = codec.loads(row["input"]), codec.loads(row["output"])
            for key in ("input_tokens", "output_tokens", "cost_usd"):
                row[key] = None if _missing(row[key]) else row[key]
        return rows
    records = getattr(store, "spans", [])  # a MemoryStore keeps its span records
    chosen = sorted((r for r in records if r.get("kind") == "llm" and (
        r.get("run") == run_id or (children and str(r.get("run")).startswith(run_id + ".")))),
        key=lambda r: r.get("started") or 0.0)
    return [{key: r.get(key) for key in _SPAN_KEYS} for r in chosen]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # NaN from pandas


__all__ = ["DIFF_COLUMNS", "diff", "llm_spans", "snapshots", "text_diff"]
