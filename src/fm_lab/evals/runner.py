"""``fm_lab.evals.run``: a target over a dataset, per variant, each row a traced run and
scored; rows are stored as they finish, so an experiment that stopped is resumed by its id
and runs only the rows it has not stored."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fm_lab.evals.data import Dataset, Example, load
from fm_lab.evals.experiment import Experiment, ExperimentError, load_experiment
from fm_lab.evals.scorers import Case, Scorer, ScoreRow, as_scorers, score_case
from fm_lab.evals.tables import Tables, now, tables
from fm_lab.evals.tally import tallied
from fm_lab.evals.targets import Answer, is_workflow, local_target, target_name
from fm_lab.store.codec import dumps, loads
from fm_lab.tracing.spans import SpanContext, activate, current, deactivate

if TYPE_CHECKING:
    from fm_lab.store.base import RunStore
    from fm_lab.tracing.standalone import StandaloneTrace

DEFAULT = "default"
FLUSH_ROWS = 200
FLUSH_S = 1.0


@dataclass
class Row:
    """One finished (variant, example) of an experiment, with its scores."""

    variant: str
    position: int
    example: Example
    answer: Answer
    latency_ms: float
    usage: dict[str, Any]
    trace_id: str | None
    span_id: str | None
    scores: list[ScoreRow]


def new_experiment_id() -> str:
    """A sortable, unique experiment id (as run ids are made, with an ``x`` in front)."""
    return f"x{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


def _variants(variants: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    if not variants:
        return {DEFAULT: {}}
    bad = [name for name in variants if not re.fullmatch(r"[\w.:@+-]{1,80}", str(name))]
    if bad:
        raise ValueError(f"variant names are letters, digits and ._:@+- only: {bad}")
    not_dicts = [name for name, config in variants.items() if not isinstance(config, dict)]
    if not_dicts:
        raise TypeError(f"each variant is a dict of settings; not: {not_dicts}")
    return {str(name): dict(config) for name, config in variants.items()}


class Writer:
    """Stores finished rows and their scores in groups (every :data:`FLUSH_ROWS` rows or
    :data:`FLUSH_S` seconds, and what is left at the end, also when the experiment is
    stopped), the trace's spans made durable first."""

    def __init__(self, table: Tables, experiment_id: str, trace: StandaloneTrace | None,
                 table_store: RunStore | None = None) -> None:
        self.table, self.experiment_id, self.trace = table, experiment_id, trace
        self.table_store = table_store  # the store to hold open while rows are written
        self.pending: list[Row] = []
        self.last = time.monotonic()
        self.written = 0

    def add(self, row: Row) -> None:
        self.pending.append(row)
        if len(self.pending) >= FLUSH_ROWS or time.monotonic() - self.last >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        rows, self.pending = self.pending, []
        if not rows:
            return
        if self.trace is not None:
            self.trace.recorder.commit()
        with self.table.batch():
            self.table.insert("eval_results", [self._result(r) for r in rows])
            self.table.insert("eval_scores", [
                score_record(s, self.experiment_id, r.variant, r.position, r.answer.run_id)
                for r in rows for s in r.scores])
        self.written += len(rows)

    def _result(self, row: Row) -> dict[str, Any]:
        answer = row.answer
        return {"experiment_id": self.experiment_id, "variant": row.variant,
                "position": row.position, "example_id": row.example.example_id,
                "output": dumps(answer.output), "error": dumps(answer.error) if answer.error
                else None, "latency_ms": row.latency_ms,
                "input_tokens": row.usage.get("input_tokens", 0),
                "output_tokens": row.usage.get("output_tokens", 0),
                "cached_tokens": row.usage.get("cached_tokens", 0),
                "cost_usd": row.usage.get("cost_usd", 0.0), "model": answer.model,
                "run_id": answer.run_id, "trace_id": row.trace_id, "span_id": row.span_id}


def score_record(score: ScoreRow, experiment_id: str | None, variant: str | None,
                 position: int | None, run_id: str | None) -> dict[str, Any]:
    """An ``eval_scores`` row."""
    return {"experiment_id": experiment_id, "variant": variant, "position": position,
            "run_id": run_id, "trace_id": score.trace_id, "span_id": score.span_id,
            "scorer": score.scorer, "value": score.score.value, "passed": score.score.passed,
            "reason": score.score.reason, "input_tokens": score.input_tokens,
            "output_tokens": score.output_tokens, "cost_usd": score.cost_usd,
            "scored_at": now()}


@contextlib.contextmanager
def experiment_trace(store: RunStore) -> Iterator[tuple[SpanContext | None,
                                                         StandaloneTrace | None]]:
    """Where rows' spans go: a trace of the experiment's own (stored when it ends), or the
    run or trace the experiment is started in."""
    from fm_lab.tracing.standalone import begin

    trace = begin(store)
    if trace is None:
        yield current(), None
        return
    try:
        yield trace.context, trace
    finally:
        trace.close()


def _case(example: Example, answer: Answer, latency_ms: float | None,
          cost: float | None) -> Case:
    return Case(answer.output, example.expected, example.inputs, example.metadata, latency_ms,
                cost, answer.tool_calls)


async def _local_row(target: Any, variant: str, config: dict[str, Any], position: int,
                     example: Example, scorers: list[Scorer], parent: SpanContext | None,
                     experiment_id: str) -> Row:
    """Run one example as a traced row (span kind ``eval``: the target's span, then each
    scorer's) and score it."""
    from fm_lab.tracing.spans import Span

    root = Span(parent, f"{experiment_id}/{variant}", "eval", example.inputs,
                {"experiment_id": experiment_id, "variant": variant,
                 "example_id": example.example_id})
    with root:
        here = root.context()
        call, tally = tallied(here, "target", "target", None, {"variant": variant})
        started = time.perf_counter()
        with call:
            try:
                answer = await target.answer(example.inputs, config)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                answer = Answer(None, {"type": type(exc).__name__, "message": str(exc)[:500]})
                call.status = "error"
            latency = (time.perf_counter() - started) * 1000
            call.output = answer.output
            if tally is not None:
                tally.stamp(call)
                answer.model = answer.model or (tally.models[-1] if tally.models else None)
        usage = tally.usage() if tally is not None else {}
        root.output = answer.output
        scores = await score_case(scorers, _case(example, answer, latency,
                                                 usage.get("cost_usd")), here)
    return Row(variant, position, example, answer, latency, usage, root.trace_id,
               root.span_id if root.recording else None, scores)


async def _run_local(target: Any, todo: list[tuple[str, dict[str, Any], int, Example]],
                     scorers: list[Scorer], writer: Writer, parent: SpanContext | None,
                     concurrency: int) -> None:
    """``concurrency`` workers take rows in turn (a sync function target then runs in
    worker threads, so calls that wait on a model overlap)."""
    runner = local_target(target, threads=concurrency > 1)
    pending = iter(todo)
    token = activate(parent)

    async def worker() -> None:
        for variant, config, position, example in pending:
            writer.add(await _local_row(runner, variant, config, position, example, scorers,
                                        parent, writer.experiment_id))

    # one connection for the whole experiment (not an open and a close per group of rows),
    # held by the thread of this loop, as batch.map does
    try:
        with writer.table_store.hold() if writer.table_store is not None else \
                contextlib.nullcontext():
            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(todo)))))
    finally:
        deactivate(token)


def _batch_id(experiment_id: str, variant: str) -> str:
    return f"{experiment_id}-{re.sub(r'[^A-Za-z0-9_-]', '_', variant)}"


async def _score_workflow_rows(frame: Any, variant: str, todo: dict[int, Example],
                               scorers: list[Scorer], writer: Writer,
                               sink_parent: SpanContext | None) -> None:
    """Score the rows of a workflow variant (run by :func:`fm_lab.batch.map`); each
    scorer's span joins the batch item's trace."""
    for position, example in todo.items():
        item = frame.iloc[position]
        failed = item["status"] != "succeeded"
        answer = Answer(item["outputs"], item["error"] if failed else None, item["run_id"])
        latency = float(item["duration_ms"]) if item["duration_ms"] == item["duration_ms"] \
            else None
        usage = {"input_tokens": int(item["input_tokens"] or 0),
                 "output_tokens": int(item["output_tokens"] or 0),
                 "cost_usd": float(item["cost_usd"] or 0.0)}
        parent = None if sink_parent is None else SpanContext(
            str(item["trace_id"]), None, None, sink_parent.sink)
        scores = await score_case(scorers, _case(example, answer, latency, usage["cost_usd"]),
                                  parent)
        writer.add(Row(variant, position, example, answer, latency or 0.0, usage,
                       str(item["trace_id"]), None, scores))


def _run_workflow(target: Any, variants: dict[str, dict[str, Any]],
                  todo: list[tuple[str, dict[str, Any], int, Example]], dataset: Dataset,
                  scorers: list[Scorer], writer: Writer, parent: SpanContext | None,
                  store: RunStore, executor: Any, concurrency: int | None) -> None:
    from fm_lab.batch.sweep import map as batch_map
    from fm_lab.sync import run_sync

    for variant, config in variants.items():
        wanted = {position: example for v, _, position, example in todo if v == variant}
        if not wanted:
            continue
        rows = [{**e.inputs, **config} for e in dataset.examples]
        frame = batch_map(target, rows, concurrency=concurrency, executor=executor,
                          batch_id=_batch_id(writer.experiment_id, variant), store=store)
        run_sync(_score_workflow_rows(frame, variant, wanted, scorers, writer, parent))


def _start(store: RunStore, experiment_id: str, name: str | None, dataset: Dataset,
           target: str, variants: dict[str, dict[str, Any]], scorers: list[Scorer]
           ) -> tuple[Dataset, dict[str, dict[str, Any]], set[tuple[str, int]]]:
    """Record a new experiment, or check a resumed one is the same; the dataset version,
    variants and rows already stored."""
    from fm_lab.identity import current_user

    table = tables(store)
    found = table.select("eval_experiments", {"experiment_id": experiment_id})
    if not len(found):
        table.insert("eval_experiments", [{
            "experiment_id": experiment_id, "name": name, "dataset": dataset.name,
            "dataset_version": dataset.version, "target": target, "variants": dumps(variants),
            "scorers": dumps([s.name for s in scorers]), "status": "running",
            "created_at": now(), "created_by": current_user()}])
        return dataset, variants, set()
    row = found.iloc[0]
    if row["dataset"] != dataset.name:
        raise ExperimentError(f"experiment {experiment_id} ran on dataset {row['dataset']!r}, "
                              f"not {dataset.name!r}")
    stored = loads(row["variants"]) or {}
    if set(stored) != set(variants) and variants != {DEFAULT: {}}:
        raise ExperimentError(f"experiment {experiment_id} has variants {sorted(stored)}, "
                              f"not {sorted(variants)}")
    table.update("eval_experiments", {"status": "running"}, {"experiment_id": experiment_id})
    done = table.select("eval_results", {"experiment_id": experiment_id})
    return (load(dataset.name, int(row["dataset_version"]), store), stored,
            {(str(v), int(p)) for v, p in zip(done["variant"], done["position"], strict=True)})


def run(target: Any, dataset: Dataset | str, scorers: Any = None, *,
        variants: dict[str, dict[str, Any]] | None = None, concurrency: int = 8,
        executor: Any = "local", experiment_id: str | None = None, name: str | None = None,
        cassette: Any = None, cassette_mode: str = "auto",
        store: RunStore | None = None) -> Experiment:
    """Run ``target`` (a function, an agent or a workflow) on every example of ``dataset``
    (a :class:`Dataset` or a stored dataset's name), once per variant, and score each row
    with ``scorers``. Each row is a traced run; the result is an :class:`Experiment` whose
    ``df`` has inputs, outputs, expected, scores, reasons, tokens, cost, latency and ids.

    ``variants``: ``{"name": {setting: value}}``: keyword arguments of a function, attributes
    of an agent (``model``, ``instructions``), inputs of a workflow. ``executor``:
    ``"local"`` (asyncio; ``concurrency`` rows at once) or, for workflows, ``"dask"`` (or a
    scheduler address), through :func:`fm_lab.batch.map`. ``experiment_id``: resume that
    experiment (only rows not stored yet run). ``cassette``: record the model calls (path or
    store; ``cassette_mode`` as :func:`fm_lab.llm.cassette.cassette`)."""
    from fm_lab.store.default import default_store

    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    store = store or default_store()
    chosen = as_scorers(scorers)
    given = _variants(variants)
    data = load(dataset, None, store) if isinstance(dataset, str) else dataset
    workflow = is_workflow(target)
    local = isinstance(executor, str) and executor == "local"
    if not workflow and not local:
        raise ValueError("executor='dask' runs workflow targets (through fm_lab.batch); run "
                         "functions and agents with executor='local'")
    experiment_id = experiment_id or new_experiment_id()
    data, given, done = _start(store, experiment_id, name, data, target_name(target), given,
                               chosen)
    todo = [(variant, config, position, example) for variant, config in given.items()
            for position, example in enumerate(data.examples)
            if (variant, position) not in done]
    table = tables(store)
    with _tape(cassette, cassette_mode), experiment_trace(store) as (parent, trace):
        writer = Writer(table, experiment_id, trace, store)
        try:
            if workflow:
                _run_workflow(target, given, todo, data, chosen, writer, parent, store,
                              executor, None if concurrency == 8 else concurrency)
            elif todo:
                from fm_lab.sync import run_sync

                run_sync(_run_local(target, todo, chosen, writer, parent, concurrency))
        finally:
            writer.flush()
    table.update("eval_experiments", {"status": "finished", "finished_at": now()},
                 {"experiment_id": experiment_id})
    return load_experiment(experiment_id, store)


@contextlib.contextmanager
def _tape(cassette: Any, mode: str) -> Iterator[None]:
    if cassette is None:
        yield
        return
    from fm_lab.llm.cassette import cassette as open_cassette

    with open_cassette(cassette, mode):  # type: ignore[arg-type]
        yield


def rescore(experiment: Experiment | str, scorers: Any, *, cassette: Any = None,
            cassette_mode: str = "replay", store: RunStore | None = None) -> Experiment:
    """Score an experiment's stored outputs again with ``scorers`` (their earlier scores are
    replaced); the target is not run. With ``cassette`` (``replay`` by default) an LLM
    judge's calls are answered from the recording: no provider is called."""
    found = experiment if isinstance(experiment, Experiment) else load_experiment(
        experiment, store)
    store = found.store if store is None else store
    chosen = as_scorers(scorers)
    frame = found.df
    examples = {e.example_id: e for e in load(found.dataset, found.dataset_version,
                                              store).examples}
    rows: list[ScoreRow] = []
    keys: list[tuple[str, int, str | None]] = []

    async def score_all(parent: SpanContext | None) -> None:
        for item in frame.to_dict("records"):
            example = examples[str(item["example_id"])]
            run_id, trace_id = _text(item["run_id"]), _text(item["trace_id"])
            answer = Answer(item["output"], item["error"], run_id)
            context = parent if parent is None or trace_id is None else SpanContext(
                trace_id, _text(item["span_id"]), None, parent.sink)
            found_scores = await score_case(chosen, _case(example, answer, _number(
                item["latency_ms"]), _number(item["cost_usd"])), context)
            rows.extend(found_scores)
            keys.extend([(str(item["variant"]), int(item["position"]), run_id)]
                        * len(found_scores))

    from fm_lab.sync import run_sync

    with _tape(cassette, cassette_mode), experiment_trace(store or _default()) as (parent, _):
        run_sync(score_all(parent))
    table = tables(store)
    with table.batch():
        table.delete("eval_scores", {"experiment_id": found.experiment_id,
                                     "scorer": [s.name for s in chosen]})
        table.insert("eval_scores", [score_record(score, found.experiment_id, variant,
                                                  position, run_id)
                                     for score, (variant, position, run_id)
                                     in zip(rows, keys, strict=True)])
    return found.refresh()


def _text(value: Any) -> str | None:
    """A stored id, None when missing (None or NaN)."""
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def _default() -> RunStore:
    from fm_lab.store.default import default_store

    return default_store()

