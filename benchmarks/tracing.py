"""Tracing at scale: ingest 1,000,000 synthetic spans into a fresh DuckDB file store, then query.

Data: spans shaped like the ones the engine journals (``Span.end`` / ``Runner._finish`` records:
``k="span"`` with trace/span/parent ids, run, kind, name, entity, workflow, node, agent,
started/ended, status, input/output, attrs, and the usage fields of LLM calls), spread over
~10,000 runs (one trace each, 100 spans per run: 1 workflow span, 30 node spans, 40 LLM calls,
29 tool calls), 5 models (4 priced by litellm's table, ``offline/echo`` unpriced), 30 days, with
realistic token counts (prompts of 200-12,000 tokens, some of them cache hits; o3-mini with
reasoning tokens). Records are generated per batch, untimed, from a seeded RNG, so every path
ingests the same rows.

Ingestion, timed five ways (each into its own fresh file store):

1. ``store``: a run's path, ``Store.ingest(run_id, records, texts=...)`` in batches of 50,000
   records, after one ``start`` record so the ingesting run exists. Each span record comes with
   the JSON text the run's journal wrote when the span ended (encoded untimed here, its cost
   printed separately); as in a run, each call opens the file and closes it afterwards
   (``Store.connection``). ``store_held``: the same inside ``Store.hold()``.
2. ``dicts``: ``Store.ingest(run_id, records)`` without the journal's text (encoding timed).
3. ``arrow``: the same rows as Arrow batches: ``span_table.arrow_table(cols)`` +
   ``span_table.insert_spans(con, table)`` on one connection, one transaction per batch. The
   column lists come from ``rows_from_records`` (untimed here: its cost is ``rows_from_records``
   in the breakdown).
4. peer ``read_json``: DuckDB's own NDJSON loader on the same texts written to a file per
   batch, through the same projection, into a plain ``duckdb.connect`` file.
5. peer ``executemany``: plain ``duckdb`` ``executemany`` of the same rows (tuples, already
   JSON-encoded) into the same table, on a sample of the rows (it is slow); spans/s is
   extrapolated from the sample.

Then, on the ``store`` file: ``fm_lab.usage(by=["model", "day"])`` (cold: the first call, which
imports litellm; warm: median of 5), ``fm_lab.trace(run_id)`` for random runs (median of 5) and
the DuckDB file size per million spans. Targets: ingestion >= 200,000 spans/s, usage roll-up
< 0.5 s, one trace < 50 ms. Lookups by trace, kind+time, entity+time and status are timed too;
``--art-indexes`` repeats the ingest with ART indexes on those columns to show what they cost
and buy over DuckDB's zone maps.

``--profile`` prints where the time of one ingest batch and of one trace goes (cProfile).

Usage::

    .venv/bin/python benchmarks/tracing.py            # 1,000,000 spans (a few minutes)
    .venv/bin/python benchmarks/tracing.py --quick    # 100,000 spans
    .venv/bin/python benchmarks/tracing.py --json benchmarks/out/tracing.json --profile
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # prices offline

import duckdb

import fm_lab
from fm_lab.spec.models import Workflow
from fm_lab.store import span_table
from fm_lab.store.duckdb_store import Store
from fm_lab.store.journal import encode_record

BATCH = 50_000
SPANS_PER_RUN = 100
DAYS = 30
MODELS = ("gpt-4o", "gpt-4o-mini", "o3-mini", "gpt-4.1-mini", "offline/echo")
MODEL_WEIGHTS = (0.25, 0.35, 0.10, 0.20, 0.10)
INGEST_TARGET = 200_000  # spans/s
USAGE_TARGET_S = 0.5
TRACE_TARGET_S = 0.050
EXECUTEMANY_SAMPLE = 5_000
INGEST_RUN = "bench-ingest"
NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC).timestamp()


# ---- synthetic spans ---------------------------------------------------------------------------
def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def run_ids(n_runs: int) -> list[str]:
    return [f"r{i:06d}" for i in range(n_runs)]


def trace_of(run_index: int) -> str:
    return f"{random.Random(run_index * 7919).getrandbits(128):032x}"


def run_records(run_index: int, rng: random.Random) -> list[dict[str, Any]]:
    """The 100 span records of one run, as the engine journals them."""
    run_id, trace = f"r{run_index:06d}", trace_of(run_index)
    workflow = f"wf{run_index % 25}"
    start = NOW - rng.random() * DAYS * 86400
    root = _hex(rng, 64)
    records: list[dict[str, Any]] = []
    clock = start
    node_spans: list[tuple[str, str, float]] = []
    for n in range(30):
        node_span = _hex(rng, 64)
        node = f"step{n}"
        began = clock
        clock += rng.uniform(0.01, 3.0)
        records.append({
            "k": "span", "trace": trace, "span": node_span, "parent": root, "run": run_id,
            "kind": "node", "name": node, "entity": node, "workflow": workflow, "node": node,
            "agent": None, "resource": None, "started": began, "ended": clock,
            "status": "ok" if rng.random() > 0.01 else "error",
            "input": {"question": f"q{n}", "top_k": 5}, "output": {"answer": "x" * 40},
            "error": None, "attrs": {"node_type": "code", "attempts": 1}, "events": None})
        node_spans.append((node_span, node, began))
    for n in range(40):
        parent, node, began = node_spans[n % 30]
        model = rng.choices(MODELS, MODEL_WEIGHTS)[0]
        prompt = int(rng.lognormvariate(7.3, 0.8)) + 200  # median ~1,700 tokens
        prompt = min(prompt, 12_000)
        cached = int(prompt * rng.uniform(0.3, 0.9)) if rng.random() < 0.4 else 0
        output = min(int(rng.lognormvariate(5.5, 0.7)) + 20, 4_000)  # median ~265
        reasoning = int(output * rng.uniform(0.3, 0.7)) if model == "o3-mini" else 0
        usage = {"model": model, "provider": model.split("/")[0] if "/" in model else "openai",
                 "input_tokens": prompt, "output_tokens": output, "cached_tokens": cached,
                 "reasoning_tokens": reasoning}
        attrs = {"gen_ai.request.model": model, "gen_ai.system": usage["provider"],
                 "gen_ai.usage.input_tokens": prompt, "gen_ai.usage.output_tokens": output,
                 "gen_ai.usage.cached_tokens": cached,
                 "gen_ai.usage.reasoning_tokens": reasoning}
        t0 = began + rng.uniform(0, 0.5)
        records.append({
            "k": "span", "trace": trace, "span": _hex(rng, 64), "parent": parent, "run": run_id,
            "kind": "llm", "name": "chat", "entity": "chat", "workflow": workflow, "node": node,
            "agent": "assistant", "resource": None, "started": t0,
            "ended": t0 + rng.uniform(0.3, 8.0), "status": "ok",
            "input": {"messages": [{"role": "system", "content": "You are helpful."},
                                   {"role": "user", "content": f"Summarise item {n}."}]},
            "output": "A short summary of the item.", "error": None, "attrs": attrs,
            "events": None, **usage})
    for n in range(29):
        parent, node, began = node_spans[(n * 7) % 30]
        t0 = began + rng.uniform(0, 0.2)
        records.append({
            "k": "span", "trace": trace, "span": _hex(rng, 64), "parent": parent, "run": run_id,
            "kind": "tool", "name": "search", "entity": "search", "workflow": workflow,
            "node": node, "agent": "assistant", "resource": "kb", "started": t0,
            "ended": t0 + rng.uniform(0.005, 0.3), "status": "ok", "input": {"q": f"term {n}"},
            "output": {"hits": n % 7}, "error": None, "attrs": None, "events": None})
    records.append({
        "k": "span", "trace": trace, "span": root, "parent": None, "run": run_id,
        "kind": "workflow", "name": workflow, "entity": workflow, "workflow": workflow,
        "started": start, "ended": clock + 0.01, "status": "ok", "error": None,
        "output": {"done": True}})
    return records


def batches(total: int, seed: int = 42) -> Iterator[list[dict[str, Any]]]:
    """``total`` span records in batches of BATCH (whole runs; the same on every call)."""
    rng = random.Random(seed)
    batch: list[dict[str, Any]] = []
    seq = 1  # seq 1 is the start record
    for run_index in range(total // SPANS_PER_RUN):
        for record in run_records(run_index, rng):
            seq += 1
            record["seq"] = seq
            batch.append(record)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def start_record() -> dict[str, Any]:
    workflow = Workflow.from_dict({"id": "bench", "nodes": {
        "a": {"type": "template", "config": {"template": "x"}}}})
    record = Store.start_record(INGEST_RUN, workflow, {})
    record["seq"] = 1
    return record


def add_runs(store: Store, n_runs: int) -> None:
    """Rows in ``runs`` for the synthetic runs (so ``trace(run_id)`` finds their trace)."""
    import pyarrow as pa

    ids = run_ids(n_runs)
    table = pa.table({"run_id": ids, "trace_id": [trace_of(i) for i in range(n_runs)]})
    with store.connection() as con:
        con.register("_runs", table)
        con.execute("insert into runs (run_id, workflow_id, workflow_version, status, inputs, "
                    "created_at, trace_id) select run_id, 'bench', 1, 'succeeded', '{}', "
                    "now(), trace_id from _runs")
        con.unregister("_runs")


# ---- ingestion ---------------------------------------------------------------------------------
def _fresh_store(directory: Path, name: str) -> Store:
    store = Store(directory / f"{name}.duckdb")
    store.ingest(INGEST_RUN, [start_record()])
    return store


def journal_texts(batch: list[dict[str, Any]]) -> tuple[dict[int, bytes], float]:
    """The JSON text the run's journal wrote for each record (by seq), and its encoding time."""
    t0 = time.perf_counter()
    texts = {r["seq"]: encode_record(r) for r in batch}
    return texts, time.perf_counter() - t0


def ingest_store(directory: Path, total: int, held: bool, journaled: bool = True,
                 name: str = "store", indexes: tuple[str, ...] = ()) -> tuple[Store, float, float]:
    """Store.ingest per batch; the final close (DuckDB's checkpoint) is timed too. With
    ``journaled``, each record comes with the text the run's journal wrote for it (as in a
    run, where the journal encodes a span when it ends); returns that encoding time too.
    ``indexes``: statements run on the fresh store first."""
    store = _fresh_store(directory, name)
    with store.connection() as con:
        for sql in indexes:
            con.execute(sql)
    elapsed = encoding = 0.0
    hold = store.hold() if held else None
    if hold is not None:
        hold.__enter__()
    try:
        for batch in batches(total):
            texts, encoded_in = journal_texts(batch) if journaled else (None, 0.0)
            encoding += encoded_in
            gc.collect()
            t0 = time.perf_counter()
            store.ingest(INGEST_RUN, batch, texts=texts)
            elapsed += time.perf_counter() - t0
    finally:
        t0 = time.perf_counter()
        if hold is not None:
            hold.__exit__(None, None, None)
        store.close()
        elapsed += time.perf_counter() - t0
    return store, elapsed, encoding


def ingest_arrow(directory: Path, total: int) -> tuple[float, dict[str, float]]:
    store = _fresh_store(directory, "arrow")
    parts = {"rows_from_records": 0.0, "arrow_table": 0.0, "insert_spans": 0.0}
    with store.connection() as con:
        for batch in batches(total):
            gc.collect()
            t0 = time.perf_counter()
            cols = span_table.rows_from_records(INGEST_RUN, "bench", batch)
            t1 = time.perf_counter()
            table = span_table.arrow_table(cols)
            t2 = time.perf_counter()
            con.execute("begin")
            span_table.insert_spans(con, table)
            con.execute("commit")
            t3 = time.perf_counter()
            parts["rows_from_records"] += t1 - t0
            parts["arrow_table"] += t2 - t1
            parts["insert_spans"] += t3 - t2
        t0 = time.perf_counter()
    store.close()  # the final checkpoint counts as insert time
    parts["insert_spans"] += time.perf_counter() - t0
    return parts["arrow_table"] + parts["insert_spans"], parts


def ingest_read_json(directory: Path, total: int) -> float:
    """Peer: DuckDB's own bulk loader. Each batch is written (untimed) as an NDJSON file of
    the journal's texts, then ``read_json`` loads it into the same table through the same
    projection as the store's, in a plain ``duckdb.connect`` file with default settings, one
    transaction per batch."""
    from fm_lab.store.schema import MIGRATIONS

    con = duckdb.connect(str(directory / "read_json.duckdb"))
    for _, sql in MIGRATIONS:
        con.execute(sql)
    columns = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in
                              json.loads(span_table._SPAN_RECORD).items()) + "}"
    head = span_table._INSERT_SPAN_RECORDS.rsplit("from (select from_json", 1)[0]
    path = directory / "batch.ndjson"
    elapsed = 0.0
    for batch in batches(total):
        texts, _ = journal_texts(batch)
        path.write_bytes(b"\n".join(texts.values()))
        gc.collect()
        t0 = time.perf_counter()
        con.execute("begin")
        con.execute(f"{head}from read_json('{path}', format='newline_delimited', "
                    f"columns={columns}) s", {"run": INGEST_RUN, "workflow": "bench",
                                              "limit": span_table.MAX_CHARS})
        con.execute("commit")
        elapsed += time.perf_counter() - t0
    t0 = time.perf_counter()
    con.close()
    return elapsed + time.perf_counter() - t0


def ingest_executemany(directory: Path, sample: int) -> float:
    """Plain duckdb: executemany of already JSON-encoded rows (a sample)."""
    con = duckdb.connect(str(directory / "executemany.duckdb"))
    from fm_lab.store.schema import MIGRATIONS

    for _, sql in MIGRATIONS:
        con.execute(sql)
    batch = next(batches(sample))[:sample]
    cols = span_table.rows_from_records(INGEST_RUN, "bench", batch)
    names = span_table.COLUMNS
    rows = list(zip(*(cols[n] for n in names), strict=True))
    # the spans columns in table order, duration_ms computed from started/ended
    rows = [(*r[:13], (r[12] - r[11]) * 1000, *r[13:]) for r in rows]
    marks = ", ".join("?" for _ in range(11))
    t0 = time.perf_counter()
    con.execute("begin")
    con.executemany(
        f"insert into spans values ({marks}, to_timestamp(?), to_timestamp(?), "
        + ", ".join("?" for _ in range(len(rows[0]) - 13)) + ")", rows)
    con.execute("commit")
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


# ---- queries -----------------------------------------------------------------------------------
def time_usage(store: Store, reps: int = 5) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    frame = fm_lab.usage(by=["model", "day"], store=store)
    cold = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        frame = fm_lab.usage(by=["model", "day"], store=store)
        times.append(time.perf_counter() - t0)
    return cold, statistics.median(times), len(frame)


def time_trace(store: Store, n_runs: int, reps: int = 5) -> tuple[float, int]:
    rng = random.Random(7)
    times, size = [], 0
    fm_lab.trace(run_ids(n_runs)[0], store=store)  # warm-up (imports)
    for _ in range(reps):
        run_id = rng.choice(run_ids(n_runs))
        t0 = time.perf_counter()
        frame = fm_lab.trace(run_id, store=store)
        times.append(time.perf_counter() - t0)
        size = len(frame)
        assert size == SPANS_PER_RUN, (run_id, size)
    return statistics.median(times), size


ART_INDEXES = ("create index spans_trace on spans (trace_id)",
               "create index spans_kind_time on spans (kind, started_at)",
               "create index spans_entity_time on spans (entity_id, started_at)")
LAST_DAY = dt.datetime.fromtimestamp(NOW - 86400, dt.UTC)


def time_filters(store: Store, reps: int = 5) -> dict[str, float]:
    """Median seconds of the trace/kind+time/entity+time lookups the issue names."""
    lookups = {
        "trace(run_id)": lambda: fm_lab.trace(run_ids(3)[2], store=store),
        "traces(kind='llm', since=<a day ago>)":
            lambda: fm_lab.traces(kind="llm", since=LAST_DAY, limit=100, store=store),
        "traces(entity='step3', since=<a day ago>)":
            lambda: fm_lab.traces(entity="step3", since=LAST_DAY, limit=100, store=store),
        "traces(status='error')": lambda: fm_lab.traces(status="error", limit=100, store=store),
    }
    medians = {}
    with store.hold():
        for label, call in lookups.items():
            call()  # warm-up
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                call()
                times.append(time.perf_counter() - t0)
            medians[label] = statistics.median(times)
    return medians


def with_art_indexes(directory: Path, total: int, n_runs: int) -> tuple[float, dict[str, float]]:
    """Ingest into a store with ART indexes on trace, kind/time and entity/time (DuckDB's
    only explicit index), for its cost and what it buys over zone maps."""
    store, elapsed, _ = ingest_store(directory, total, held=False, name="art",
                                     indexes=ART_INDEXES)
    add_runs(store, n_runs)
    return total / elapsed, time_filters(store)


def profile(label: str, call: Any, top: int = 18) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\n--- profile: {label} (own time) ---")
    print("\n".join(line for line in out.getvalue().splitlines()[4:] if line.strip()))


# ---- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 spans")
    parser.add_argument("--spans", type=int, help="number of spans (default 1,000,000)")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--profile", action="store_true", help="profile one batch and a trace")
    parser.add_argument("--no-held", action="store_true", help="skip the Store.hold() variant")
    parser.add_argument("--art-indexes", action="store_true",
                        help="also ingest into a store with ART indexes and compare lookups")
    args = parser.parse_args(argv)
    total = args.spans or (100_000 if args.quick else 1_000_000)
    total -= total % SPANS_PER_RUN
    n_runs = total // SPANS_PER_RUN
    print(f"tracing benchmark: {total:,} spans, {n_runs:,} runs/traces, {len(MODELS)} models, "
          f"{DAYS} days; batches of {BATCH:,}")
    print(f"python {platform.python_version()}, duckdb {duckdb.__version__}, "
          f"{os.cpu_count()} CPUs, {platform.platform()}")

    t0 = time.perf_counter()
    generated = sum(len(b) for b in batches(total))
    print(f"generating the records (untimed in the figures below): {generated:,} in "
          f"{time.perf_counter() - t0:.1f} s")
    results: dict[str, Any] = {"spans": total, "runs": n_runs, "batch": BATCH}
    with tempfile.TemporaryDirectory(prefix="fm_lab_tracing_") as tmp:
        directory = Path(tmp)
        warm = _fresh_store(directory, "warm-up")  # first-use costs (imports, JSON extension)
        warm.ingest(INGEST_RUN, next(batches(SPANS_PER_RUN * 20)))
        warm.close()
        store, elapsed, encoding = ingest_store(directory, total, held=False)
        results["store_s"] = elapsed
        results["journal_encode_s"] = encoding
        if not args.no_held:
            held, held_s, _ = ingest_store(directory, total, held=True, name="held")
            held.close()
            results["store_held_s"] = held_s
        dicts, dicts_s, _ = ingest_store(directory, total, held=False, journaled=False,
                                         name="dicts")
        dicts.close()
        results["store_dicts_s"] = dicts_s
        arrow_s, parts = ingest_arrow(directory, total)
        results["arrow_s"] = arrow_s
        results["breakdown_s"] = parts
        sample = min(EXECUTEMANY_SAMPLE, total)
        results["read_json_s"] = ingest_read_json(directory, total)
        results["executemany_s"] = ingest_executemany(directory, sample)
        results["executemany_sample"] = sample

        count = int(store.sql("select count(*) as n from spans")["n"].item())
        assert count == total, count
        add_runs(store, n_runs)
        store.sql("checkpoint")
        store.close()
        size = os.path.getsize(store.path)
        results["file_mb"] = size / 1e6
        results["mb_per_million"] = size / 1e6 / (total / 1e6)

        cold, warm, groups = time_usage(store)
        results.update(usage_cold_s=cold, usage_s=warm, usage_groups=groups)
        trace_s, trace_spans = time_trace(store, n_runs)
        results.update(trace_s=trace_s, trace_spans=trace_spans)
        with store.hold():
            _, held_usage, _ = time_usage(store)
            held_trace, _ = time_trace(store, n_runs)
        results.update(usage_held_s=held_usage, trace_held_s=held_trace)
        results["lookups_s"] = time_filters(store)
        if args.art_indexes:
            rate, lookups = with_art_indexes(directory, total, n_runs)
            results.update(art_spans_per_s=rate, art_lookups_s=lookups)

        if args.profile:
            batch = next(batches(BATCH * 2, seed=1))
            extra = _fresh_store(directory, "profile")
            profile("Store.ingest, one batch of 50,000 spans",
                    lambda: extra.ingest(INGEST_RUN, batch))
            extra.close()
            profile("fm_lab.trace(run_id)", lambda: fm_lab.trace(run_ids(n_runs)[3], store=store))
            profile("fm_lab.usage(by=['model', 'day'])",
                    lambda: fm_lab.usage(by=["model", "day"], store=store))

    rate = total / results["store_s"]
    results["store_spans_per_s"] = rate
    print(f"\ningestion (spans/s; target >= {INGEST_TARGET:,}):")
    rows = [("Store.ingest of journaled records (a run's path)", total, results["store_s"])]
    if "store_held_s" in results:
        rows.append(("  the same inside Store.hold()", total, results["store_held_s"]))
    rows.append(("Store.ingest of records without journal text", total,
                 results["store_dicts_s"]))
    rows.append(("arrow_table + insert_spans", total, results["arrow_s"]))
    rows.append(("peer: DuckDB read_json of the same spans (NDJSON files)", total,
                 results["read_json_s"]))
    rows.append((f"peer: duckdb executemany (sample of {results['executemany_sample']:,})",
                 results["executemany_sample"], results["executemany_s"]))
    for label, n, seconds in rows:
        spans_per_s = n / seconds
        flag = "ok " if spans_per_s >= INGEST_TARGET else "MISS"
        print(f"  {flag} {label:<52} {spans_per_s:>12,.0f}/s  ({seconds:.2f} s)")
        results.setdefault("rates", {})[label] = spans_per_s
    print(f"  (the journal's encoding, paid by the run as each span ends: "
          f"{results['journal_encode_s'] / total * 1e6:.2f} us/span; Store.ingest opens the "
          "file per batch and closes it after, as a run does)")
    print("  breakdown of the Arrow path per million spans: " + ", ".join(
        f"{k} {v / (total / 1e6):.2f} s" for k, v in results["breakdown_s"].items()))
    print(f"\nusage(by=['model', 'day']): {results['usage_s'] * 1000:.0f} ms median of 5 "
          f"(inside hold(): {results['usage_held_s'] * 1000:.0f} ms; "
          f"{results['usage_groups']} groups) target < {USAGE_TARGET_S * 1000:.0f} ms: "
          f"{'ok' if results['usage_s'] < USAGE_TARGET_S else 'MISS'}; first call in the "
          f"process (imports litellm for prices): {results['usage_cold_s'] * 1000:.0f} ms "
          f"{'ok' if results['usage_cold_s'] < USAGE_TARGET_S else 'MISS'}")
    print(f"trace(run_id): {results['trace_s'] * 1000:.1f} ms median of 5 "
          f"({results['trace_spans']} spans; inside hold(): {results['trace_held_s'] * 1000:.1f} "
          f"ms) target < {TRACE_TARGET_S * 1000:.0f} ms: "
          f"{'ok' if results['trace_s'] < TRACE_TARGET_S else 'MISS'}")
    art = results.get("art_lookups_s", {})
    print("lookups inside hold(), median of 5 (no explicit index: DuckDB's zone maps)"
          + (f"; with ART indexes on trace, kind/time and entity/time, whose ingest ran at "
             f"{results['art_spans_per_s']:,.0f} spans/s" if art else "") + ":")
    for label, seconds in results["lookups_s"].items():
        print(f"  {label:<44} {seconds * 1000:6.1f} ms"
              + (f"   with ART indexes {art[label] * 1000:6.1f} ms" if art else ""))
    print(f"DuckDB file: {results['file_mb']:.0f} MB for {total:,} spans = "
          f"{results['mb_per_million']:.0f} MB per million spans")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
