"""Scoring what already ran: stored workflow runs and traces, a sample of them, each scorer's
verdict stored in ``eval_scores`` with the run's trace id (so scores join to spans), and
:func:`scores` to read every verdict back."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fm_lab.evals.scorers import Case, Scorer, ScoreRow, as_scorers, score_case
from fm_lab.evals.tables import tables
from fm_lab.store.codec import loads
from fm_lab.tracing.spans import SpanContext

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.base import RunStore


def _ids(values: Any, column: str) -> list[str]:
    if values is None:
        return []
    if hasattr(values, "columns"):
        return [str(v) for v in values[column].dropna().unique()]
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]


Found = list[tuple[Case, str | None, str, str | None]]  # case, run id, trace id, parent span


def _trace_cases(trace_ids: list[str], store: RunStore) -> Found:
    """A stored trace as a case: its root span's input and output."""
    from fm_lab.store.base import sql_store

    found: Found = []
    sql = sql_store(store, "scoring traces")
    for trace_id in trace_ids:
        roots = sql.sql("select span_id, input, output, run_id from all_spans where trace_id = ? "
                        "and parent_span_id is null order by started_at limit 1", [trace_id])
        if not len(roots):
            raise LookupError(f"no trace {trace_id!r} in the store")
        root = roots.iloc[0]
        given = loads(root["input"]) if isinstance(root["input"], str) else root["input"]
        output = loads(root["output"]) if isinstance(root["output"], str) else root["output"]
        found.append((Case(output, None, given if isinstance(given, dict) else {"input": given}),
                      root["run_id"] or None, trace_id, str(root["span_id"])))
    return found


def _run_cases(run_ids: list[str], store: RunStore) -> Found:
    found: Found = []
    for run_id in run_ids:
        try:
            snapshot = store.load_run(run_id)
        except KeyError:
            raise LookupError(f"no run {run_id!r} in the store") from None
        found.append((Case(snapshot.outputs, None, dict(snapshot.inputs),
                           {"workflow_id": snapshot.workflow.id, "status": snapshot.status}),
                      run_id, snapshot.trace_id or "", None))
    return found


async def score_found(found: Found, scorers: list[Scorer], sample: float | None,
                      rng: random.Random, store: RunStore) -> list[dict[str, Any]]:
    """Score each found case with a sample of ``scorers`` (``sample``, else each scorer's
    own rate), each call a ``scorer`` span in the case's trace; store and return the
    ``eval_scores`` rows."""
    from fm_lab.evals.runner import experiment_trace, score_record

    records: list[dict[str, Any]] = []
    with experiment_trace(store) as (parent, _):
        for case, run_id, trace_id, span_id in found:
            picked = [s for s in scorers if rng.random() < (sample or s.sample)]
            if not picked:
                continue
            context = None if parent is None else SpanContext(
                trace_id or parent.trace_id, span_id, run_id, parent.sink)
            rows: list[ScoreRow] = await score_case(picked, case, context)
            records.extend(score_record(row, None, None, None, run_id) for row in rows)
    tables(store).insert("eval_scores", records)
    return records


def _checked(scorers: Any, sample: float | None) -> list[Scorer]:
    chosen = as_scorers(scorers)
    if not chosen:
        raise ValueError("give at least one scorer")
    if sample is not None and not 0.0 < sample <= 1.0:
        raise ValueError(f"sample must be in (0, 1], not {sample}")
    return chosen


def score(runs: Any = None, *, traces: Any = None, scorers: Any, sample: float | None = None,
          seed: int | None = None, store: RunStore | None = None) -> pd.DataFrame:
    """Score stored runs (ids, or a DataFrame with ``run_id``, e.g. ``fm_lab.runs()``) and
    traces (ids, or a DataFrame with ``trace_id``, e.g. ``fm_lab.traces()``) with ``scorers``;
    ``sample`` scores that share of them (default: each scorer's own ``sample`` rate). Each
    call is a ``scorer`` span in the scored run's trace; returns the new scores."""
    import pandas as pd

    from fm_lab.store.default import default_store
    from fm_lab.sync import run_sync

    store = store or default_store()
    chosen = _checked(scorers, sample)
    found = (_run_cases(_ids(runs, "run_id"), store)
             + _trace_cases(_ids(traces, "trace_id"), store))
    records = run_sync(score_found(found, chosen, sample, random.Random(seed), store))
    return pd.DataFrame(records, columns=list(_SCORE_COLUMNS))


class ScoredAgent:
    """An agent that scores a sample of its answers as it gives them (as Mastra's agents
    carry scorers): every other attribute is the agent's. Verdicts go to
    :func:`scores`, their spans into the answer's trace."""

    def __init__(self, agent: Any, scorers: list[Scorer], sample: float | None,
                 seed: int | None, store: RunStore | None) -> None:
        self.agent, self.scorers, self.sample, self.store = agent, scorers, sample, store
        self.rng = random.Random(seed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.agent, name)

    async def agenerate(self, message: Any, **kwargs: Any) -> Any:
        """The agent's answer, then (for a sample of answers) its scores."""
        from fm_lab.store.default import default_store

        result = await self.agent.agenerate(message, **kwargs)
        given = message if isinstance(message, str) else str(message)
        case = Case(result.text, None, {"input": given}, {"agent": self.agent.name},
                    tool_calls=[str(call.get("name")) for call in result.tool_calls],
                    cost_usd=result.cost_usd)
        store = self.store or kwargs.get("store") or default_store()
        await score_found([(case, result.run_id, result.trace_id or "", None)], self.scorers,
                          self.sample, self.rng, store)
        return result

    def generate(self, message: Any, **kwargs: Any) -> Any:
        """Synchronous :meth:`agenerate`."""
        from fm_lab.sync import run_sync

        return run_sync(self.agenerate(message, **kwargs))


def scored(target: Any, scorers: Any, *, sample: float | None = None, seed: int | None = None,
           store: RunStore | None = None) -> Any:
    """Scorers carried by an agent or by workflow nodes, scoring a ``sample`` of what they
    give (default rate: each scorer's ``sample``):

    - ``scored(agent, [judge], sample=0.1)``: the agent, scoring its answers;
    - ``scored(wf, {"answer": [judge]}, sample=0.1)``: a
      :class:`~fm_lab.evals.node_scoring.ScoredNodes` that scores the ``answer`` node's
      output as each run of ``wf`` in this process finishes (``.wait()``, ``.stop()``)."""
    if isinstance(scorers, Mapping):
        from fm_lab.engine.api import load_workflow
        from fm_lab.evals.node_scoring import ScoredNodes

        return ScoredNodes(load_workflow(target), {node: _checked(chosen, sample)
                                                   for node, chosen in scorers.items()},
                           sample, seed, store)
    return ScoredAgent(target, _checked(scorers, sample), sample, seed, store)


_SCORE_COLUMNS = ("experiment_id", "variant", "position", "run_id", "trace_id", "span_id",
                  "scorer", "value", "passed", "reason", "input_tokens", "output_tokens",
                  "cost_usd", "scored_at")


def scores(*, experiment_id: str | None = None, scorer: str | None = None,
           run_id: str | None = None, store: RunStore | None = None) -> pd.DataFrame:
    """Every stored verdict (of experiments and of scored runs), newest last; ``trace_id``
    and ``span_id`` (the scorer's span) join to ``fm_lab.traces()`` / ``fm_lab.trace()``."""
    where: dict[str, Any] = {}
    for column, value in (("experiment_id", experiment_id), ("scorer", scorer),
                          ("run_id", run_id)):
        if value is not None:
            where[column] = value
    frame = tables(store).select("eval_scores", where)
    return frame.sort_values("scored_at", kind="stable").reset_index(drop=True)
