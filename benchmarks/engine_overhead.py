"""fm_lab engine overhead per node, next to LangGraph as a peer.

Every node is a no-op, so the figures are what the engine itself costs per node: validation and
planning, scheduling, the journal (group commit) and ingestion into DuckDB. Each figure is the
wall time of one ``fm_lab.run(wf, store=store)`` divided by N, the median of ``--reps`` runs
(each on a fresh temp dir). The store is created and its schema initialised before the clock
starts (what a user has after the first run; LangGraph's ``SqliteSaver.setup()`` is untimed too).

Graphs: ``chain`` (n0 -> n1 -> ... -> n{N-1}) and ``fanout`` (start -> N independent nodes ->
join; per-node figures divide by N, as the LangGraph peer does).

fm_lab modes: ``memory`` (``Store(":memory:")``, no journal), ``fsync`` (file store, the
default durability: one write + one fsync per group commit) and ``process`` (file store, the
journal is written but not fsynced). LangGraph modes: ``memory`` (no checkpointer) and
``sqlite`` (``SqliteSaver``, ``durability="sync"``), see ``_langgraph_peer.py``.

For fm_lab the total is split into ``plan`` (``Workflow.validate`` + ``Plan``, inside
``fm_lab.run``), ``begin`` (``Store.start_record``), ``journal`` (``Journal.append`` + ``commit``:
encoding, write, fsync), ``ingest`` (journal records into DuckDB) and ``rest`` (the scheduler,
asyncio and the rest of ``fm_lab.run``). For each (graph, N) the engines and modes take turns
rep by rep, so a slow spell of the disk hits fm_lab and LangGraph alike. An append+fsync probe
of the temp disk is printed too: a durable chain node cannot cost less than one fsync.

Foreach section: one ``foreach`` node over N no-op items (``items: "{{ inputs.xs }}"`` with
inputs ``{xs: list(range(N))}``, body ``node: {type: noop}``, concurrency 64), fm_lab ``fsync``
and ``memory``, next to LangGraph's ``Send`` fan-out (``foreach_send``, concurrency 64,
``SqliteSaver`` with ``durability="sync"`` and without a checkpointer). Figures are ms per item.
Each fm_lab run is checked: the run succeeded, the foreach output has ``succeeded == N`` and
DuckDB holds N item checkpoints (``node_executions`` rows ``loop[i]``); the ``commits`` column
counts the journal's group commits (one write + one fsync each). Targets: fm_lab durable
<= 0.1 ms per item with every item checkpointed, and flat (ms/item at the large N / at the small
N <= 1.3x). ``--section foreach`` (or ``graphs``) runs one section only.

Fixed-cost section (``--section fixed``): what a short run costs in a long-lived process (a
notebook kernel), a 10-node no-op chain run again and again: fm_lab ``fm_lab.run(spec, store=
store)`` with the spec as a dict and one file store reused (plan, validation, journal, storing
into DuckDB: everything but the first run's imports), beside LangGraph ``graph.invoke`` with its
compiled graph and ``SqliteSaver`` reused (``durability="sync"``). Each engine runs blocks of
``FIXED_RUNS`` runs back to back, the two alternating block by block (``FIXED_ROUNDS`` blocks
each, after a warm-up block). Two figures per engine: each run's own time (median / p90: what
a cell waits for) and each block's wall time per run, which includes what the runs left to a
background thread (a finished short run is stored in DuckDB with others a moment later) and
storing what is still queued at the block's end. Rows: ``fsync`` (the defaults), ``at_end``
(``Store(group_delay_s=0)``: each run stored at its end, opening and closing the file),
``held`` (inside ``store.hold()``, as a sweep), ``process`` (no fsync), and two in-memory pairs
against LangGraph without a checkpointer: ``memory`` (an in-memory DuckDB store, the SQL still
run) and ``python`` (``fm_lab.connect("memory://")``: runs kept in Python objects, the engine
alone). A short graph run in the sections above is timed up to its storing, too.

``--profile GRAPH:N:MODE`` runs one fm_lab run under cProfile instead and prints the top
functions (cumulative and own time); GRAPH is ``chain``, ``fanout`` or ``foreach``.

Usage::

    .venv/bin/python benchmarks/engine_overhead.py            # full run (~3 minutes)
    .venv/bin/python benchmarks/engine_overhead.py --quick    # smaller sizes
    .venv/bin/python benchmarks/engine_overhead.py --json out.json
    .venv/bin/python benchmarks/engine_overhead.py --profile chain:10000:fsync
    .venv/bin/python benchmarks/engine_overhead.py --section foreach
    .venv/bin/python benchmarks/engine_overhead.py --profile foreach:100000:fsync
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import fm_lab
import fm_lab.engine.api as fm_api
import fm_lab.engine.plan as fm_plan
from fm_lab.nodes.base import NodeContext

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _langgraph_peer as peer

SPEEDUP_TARGET = 5.0
TARGET_SIZES = {"chain": 1000, "fanout": 5000}  # where the speed-up target applies
FLATNESS_TARGET = 1.3
FM_MODES = ("memory", "fsync", "process")
FIXED_N = 10  # nodes of the fixed-cost chain
FIXED_RUNS = 41  # runs per engine and mode in the fixed-cost section (QUICK: 15)
LG_MODES = ("memory", "sqlite")
FOREACH_CONCURRENCY = 64
FOREACH_TARGET_MS = 0.1  # fm_lab durable (fsync), ms per item, every item checkpointed
FOREACH_FM_MODES = ("memory", "fsync")
LG_FOREACH_LIMIT_S = 60.0  # a LangGraph foreach run slower than this: fall back to a smaller N
LG_FOREACH_FALLBACK = 2_000


# ---- the no-op node type ---------------------------------------------------------------------
@fm_lab.register_node
class Noop(fm_lab.NodeType):
    """Does nothing: what is left is engine overhead."""

    type_name = "noop"
    description = "No-op node for the engine-overhead benchmark."

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> None:
        return None


# ---- graphs ----------------------------------------------------------------------------------
def chain_spec(n: int) -> dict[str, Any]:
    """n0 -> n1 -> ... -> n{n-1}."""
    return {
        "id": f"bench_chain_{n}",
        "nodes": {f"n{i}": {"type": "noop"} for i in range(n)},
        "edges": [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(n - 1)],
    }


def fanout_spec(n: int) -> dict[str, Any]:
    """start -> n0..n{n-1} (independent) -> join."""
    nodes: dict[str, Any] = {"start": {"type": "noop"}}
    nodes.update({f"n{i}": {"type": "noop"} for i in range(n)})
    nodes["join"] = {"type": "noop"}
    edges = [{"source": "start", "target": f"n{i}"} for i in range(n)]
    edges += [{"source": f"n{i}", "target": "join"} for i in range(n)]
    return {"id": f"bench_fanout_{n}", "nodes": nodes, "edges": edges}


def foreach_spec(n: int) -> dict[str, Any]:
    """One foreach node over ``inputs.xs`` (n ints, given at run time) with a no-op body."""
    return {
        "id": f"bench_foreach_{n}",
        "nodes": {
            "loop": {
                "type": "foreach",
                "config": {
                    "items": "{{ inputs.xs }}",
                    "node": {"type": "noop"},
                    "concurrency": FOREACH_CONCURRENCY,
                },
            }
        },
    }


def foreach_inputs(n: int) -> dict[str, Any]:
    return {"xs": list(range(n))}


SPECS: dict[str, Callable[[int], dict[str, Any]]] = {
    "chain": chain_spec,
    "fanout": fanout_spec,
    "foreach": foreach_spec,
}
INPUTS: dict[str, Callable[[int], dict[str, Any]]] = {"foreach": foreach_inputs}
PEERS: dict[str, Callable[[int, str | None], float]] = {
    "chain": peer.chain,
    "fanout": peer.fanout,
}


# ---- fm_lab instrumentation --------------------------------------------------------------------
PHASES = ("plan", "begin", "journal", "ingest")
_PLAN = "Plan"


def _timed(spent: dict[str, float], phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[phase] += time.perf_counter() - t0

    return wrapper


class TimedStore(fm_lab.Store):
    """A Store that adds up where a run spends its time: ``begin`` (``start_record``), ``journal``
    (``Journal.append`` + ``commit``: encoding, write, fsync) and ``ingest`` (into DuckDB)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spent: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.commits = 0  # journal commits that wrote (and, in fsync mode, fsynced) records
        self.start_record = _timed(self.spent, "begin", self.start_record)  # type: ignore[method-assign]
        self.ingest = _timed(self.spent, "ingest", self.ingest)  # type: ignore[method-assign]
        self.store_groups = _timed(  # type: ignore[method-assign]
            self.spent, "ingest", self.store_groups)

    def open_journal(self, run_id: str, new: bool = False) -> Any:
        journal = super().open_journal(run_id, new)
        if journal is not None:
            commit = journal.commit

            def counted_commit() -> None:
                if journal.pending:
                    self.commits += 1
                commit()

            journal.append = _timed(self.spent, "journal", journal.append)  # type: ignore[method-assign]
            journal.commit = _timed(self.spent, "journal", counted_commit)  # type: ignore[method-assign]
        return journal


@contextlib.contextmanager
def timed_plan(spent: dict[str, float]) -> Iterator[None]:
    """Time the ``Plan(...)`` (validation + planning) that ``fm_lab.run`` builds."""
    original = fm_plan.Plan
    setattr(fm_api, _PLAN, _timed(spent, "plan", original))  # fm_lab.run looks it up there
    try:
        yield
    finally:
        setattr(fm_api, _PLAN, original)


def open_store(mode: str, tmp: str) -> TimedStore:
    """A fresh store for ``mode``, schema initialised (untimed)."""
    if mode == "memory":
        store = TimedStore(":memory:")
    else:
        store = TimedStore(os.path.join(tmp, "bench.duckdb"), durability=mode)
    with store.connection():
        pass  # opens DuckDB once and creates the tables
    return store


def foreach_checks(result: Any, store: TimedStore, n: int) -> dict[str, int]:
    """Check a foreach run (untimed): ``succeeded == n`` and n item checkpoints in DuckDB."""
    output = result.outputs["loop"]
    checkpoints = int(store.sql(
        "select count(*) from node_executions where run_id = ? and node_id like 'loop[%'",
        [result.run_id],
    ).iloc[0, 0])
    if output["succeeded"] != n or output["failed"] or checkpoints != n:
        raise RuntimeError(f"fm_lab foreach {n}: succeeded={output['succeeded']}, "
                           f"failed={output['failed']}, item checkpoints={checkpoints}")
    return {"succeeded": int(output["succeeded"]), "checkpoints": checkpoints,
            "commits": store.commits}


def fm_once(graph: str, n: int, mode: str, checks: dict[str, int] | None = None
            ) -> dict[str, float]:
    """One timed ``fm_lab.run``; seconds in total and per phase (``rest``: the scheduler).
    For ``foreach`` the run is checked (untimed) and ``checks`` filled in."""
    wf = fm_lab.Workflow.from_dict(SPECS[graph](n))
    inputs = INPUTS[graph](n) if graph in INPUTS else None
    with tempfile.TemporaryDirectory(prefix="fm_bench_") as tmp:
        store = open_store(mode, tmp)
        try:
            gc.collect()
            with timed_plan(store.spent):
                t0 = time.perf_counter()
                result = fm_lab.run(wf, inputs, store=store)
                store.store_groups()  # a short run goes in with others later: it counts
                total = time.perf_counter() - t0
            if result.status != "succeeded":
                raise RuntimeError(f"fm_lab {graph} {n} {mode}: run {result.status}")
            if graph == "foreach":
                found = foreach_checks(result, store, n)
                if checks is not None:
                    checks.update(found)
        finally:
            store.close()
    return {"total": total, **store.spent, "rest": total - sum(store.spent.values())}


def lg_once(graph: str, n: int, mode: str) -> float:
    """One timed LangGraph invoke; ms per node."""
    with tempfile.TemporaryDirectory(prefix="lg_bench_") as tmp:
        db = None if mode == "memory" else os.path.join(tmp, "bench.sqlite")
        gc.collect()
        return PEERS[graph](n, db)


# ---- measurements ------------------------------------------------------------------------------
@dataclass
class Row:
    graph: str
    n: int
    engine: str
    mode: str
    ms_per_node: float
    runs_ms_per_node: list[float]
    split_ms_per_node: dict[str, float] | None = None  # fm_lab: the median run's phases
    seconds: float = 0.0
    checks: dict[str, int] | None = None  # fm_lab foreach: the median run's checks


@dataclass
class Sizes:
    chain: list[int]
    fanout: list[int]
    flatness: tuple[int, int]
    lg_chain: list[int]
    lg_fanout: list[int]
    reps: int
    foreach: tuple[int, int]  # fm_lab foreach sizes (the flatness pair)
    lg_foreach: int  # LangGraph foreach_send size (the ratio is taken there)
    notes: list[str] = field(default_factory=list)


FULL = Sizes(chain=[250, 1_000, 10_000], fanout=[5_000], flatness=(1_000, 10_000),
            lg_chain=[250, 1_000], lg_fanout=[5_000], reps=3,
            foreach=(10_000, 100_000), lg_foreach=10_000)
QUICK = Sizes(chain=[100, 250, 2_000], fanout=[1_000], flatness=(250, 2_000),
             lg_chain=[100, 250], lg_fanout=[1_000], reps=3,
             foreach=(1_000, 5_000), lg_foreach=1_000)


def fm_row(graph: str, n: int, mode: str, runs: list[dict[str, float]], seconds: float,
           checks: list[dict[str, int]] | None = None) -> Row:
    order = sorted(range(len(runs)), key=lambda i: runs[i]["total"])
    median = order[len(runs) // 2]  # the median run (reps odd)
    mid = runs[median]
    per = 1000.0 / n
    split = {k: v * per for k, v in mid.items() if k != "total"}
    return Row(graph, n, "fm_lab", mode, mid["total"] * per, [r["total"] * per for r in runs],
               split, seconds, checks[median] if checks else None)


def warm_up() -> None:
    """Run each engine and mode once, small, so no row pays imports (duckdb, pyarrow, ...)."""
    for mode in FM_MODES:
        fm_once("chain", 20, mode)
        fm_once("fanout", 20, mode)
    for graph in PEERS:
        for mode in LG_MODES:
            lg_once(graph, 20, mode)


def fsync_probe(count: int = 200) -> dict[str, float]:
    """This disk's latency of a small append + fsync (the floor of a durable chain node)."""
    with tempfile.TemporaryDirectory(prefix="fsync_probe_") as tmp:
        fd = os.open(os.path.join(tmp, "probe"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        line = b"x" * 200 + b"\n"
        times = []
        try:
            for _ in range(count):
                t0 = time.perf_counter()
                os.write(fd, line)
                os.fsync(fd)
                times.append((time.perf_counter() - t0) * 1000.0)
        finally:
            os.close(fd)
    times.sort()
    return {"median_ms": times[len(times) // 2], "p90_ms": times[int(len(times) * 0.9)]}


def run_all(sizes: Sizes, log: Callable[[str], None]) -> list[Row]:
    """Every figure; for each (graph, n) the engines and modes take turns, rep by rep, so a
    slow spell of the disk hits fm_lab and LangGraph alike."""
    groups: list[tuple[str, int, list[tuple[str, str]]]] = []
    for graph, fm_sizes, lg_sizes in (("chain", sizes.chain, sizes.lg_chain),
                                      ("fanout", sizes.fanout, sizes.lg_fanout)):
        for n in sorted({*fm_sizes, *lg_sizes}):
            combos = [("fm_lab", m) for m in FM_MODES] if n in fm_sizes else []
            combos += [("langgraph", m) for m in LG_MODES] if n in lg_sizes else []
            groups.append((graph, n, combos))
    rows: list[Row] = []
    for graph, n, combos in groups:
        fm_runs: dict[str, list[dict[str, float]]] = {}
        lg_runs: dict[str, list[float]] = {}
        spent: dict[tuple[str, str], float] = {}
        for _ in range(sizes.reps):
            for engine, mode in combos:
                t0 = time.perf_counter()
                if engine == "fm_lab":
                    fm_runs.setdefault(mode, []).append(fm_once(graph, n, mode))
                else:
                    lg_runs.setdefault(mode, []).append(lg_once(graph, n, mode))
                spent[engine, mode] = spent.get((engine, mode), 0.0) + time.perf_counter() - t0
        for engine, mode in combos:
            if engine == "fm_lab":
                row = fm_row(graph, n, mode, fm_runs[mode], spent[engine, mode])
            else:
                runs = lg_runs[mode]
                row = Row(graph, n, engine, mode, statistics.median(runs), runs,
                          seconds=spent[engine, mode])
            log(f"  {engine:<9} {graph:<6} {n:>6} {mode:<7} {row.ms_per_node:8.4f} ms/node "
                f"({row.seconds:.1f} s)")
            rows.append(row)
    return rows


# ---- foreach ------------------------------------------------------------------------------------
def lg_foreach_once(n: int, mode: str) -> float:
    """One timed LangGraph ``Send`` fan-out over n items; ms per item."""
    with tempfile.TemporaryDirectory(prefix="lg_bench_") as tmp:
        db = None if mode == "memory" else os.path.join(tmp, "bench.sqlite")
        gc.collect()
        return peer.foreach_send(n, db, FOREACH_CONCURRENCY)


def warm_up_foreach() -> None:
    for mode in FOREACH_FM_MODES:
        fm_once("foreach", 50, mode)
    for mode in LG_MODES:
        lg_foreach_once(50, mode)


def run_foreach(sizes: Sizes, log: Callable[[str], None]) -> list[Row]:
    """The foreach figures, engines and modes taking turns rep by rep. LangGraph's sqlite run
    goes first; if the very first one takes longer than ``LG_FOREACH_LIMIT_S``, LangGraph
    falls back to ``LG_FOREACH_FALLBACK`` items (noted in the output)."""
    lg_n = sizes.lg_foreach
    combos: list[tuple[str, str, int]] = [("langgraph", m, 0) for m in reversed(LG_MODES)]
    combos += [("fm_lab", m, n) for n in sizes.foreach for m in FOREACH_FM_MODES]
    fm_runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    fm_checks: dict[tuple[str, int], list[dict[str, int]]] = {}
    lg_runs: dict[str, list[float]] = {}
    spent: dict[tuple[str, str, int], float] = {}
    for rep in range(sizes.reps):
        for engine, mode, n in combos:
            t0 = time.perf_counter()
            if engine == "fm_lab":
                checks: dict[str, int] = {}
                fm_runs.setdefault((mode, n), []).append(fm_once("foreach", n, mode, checks))
                fm_checks.setdefault((mode, n), []).append(checks)
            else:
                ms = lg_foreach_once(lg_n, mode)
                wall = time.perf_counter() - t0
                too_slow = wall > LG_FOREACH_LIMIT_S and lg_n > LG_FOREACH_FALLBACK
                if rep == 0 and not lg_runs and too_slow:
                    sizes.notes.append(
                        f"LangGraph foreach_send over {lg_n:,} items took {wall:.0f} s "
                        f"(> {LG_FOREACH_LIMIT_S:.0f} s): LangGraph's foreach figures use "
                        f"{LG_FOREACH_FALLBACK:,} items instead.")
                    log(f"  langgraph foreach {lg_n} {mode}: {wall:.0f} s, falling back to "
                        f"{LG_FOREACH_FALLBACK}")
                    lg_n = sizes.lg_foreach = LG_FOREACH_FALLBACK
                    t0 = time.perf_counter()
                    ms = lg_foreach_once(lg_n, mode)
                lg_runs.setdefault(mode, []).append(ms)
            key = (engine, mode, n)
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0
    rows: list[Row] = []
    for engine, mode, n in combos:
        if engine == "fm_lab":
            row = fm_row("foreach", n, mode, fm_runs[mode, n], spent[engine, mode, n],
                         fm_checks[mode, n])
            assert row.checks is not None
            extra = (f"  checkpoints {row.checks['checkpoints']}/{n}, "
                     f"{row.checks['commits']} commits")
        else:
            runs = lg_runs[mode]
            row = Row("foreach", lg_n, engine, mode, statistics.median(runs), runs,
                      seconds=spent[engine, mode, n])
            extra = ""
        log(f"  {engine:<9} foreach {row.n:>6} {mode:<7} {row.ms_per_node:8.4f} ms/item "
            f"({row.seconds:.1f} s){extra}")
        rows.append(row)
    return rows


def summarise_foreach(rows: list[Row], sizes: Sizes) -> dict[str, Any]:
    small, large = sizes.foreach
    durable = []
    for n in sizes.foreach:
        row = _find(rows, "fm_lab", "foreach", n, "fsync")
        if row is None or row.checks is None:
            continue
        checked = row.checks["checkpoints"] == n and row.checks["succeeded"] == n
        durable.append({"n": n, "ms_per_item": row.ms_per_node,
                        "checkpoints": row.checks["checkpoints"],
                        "commits": row.checks["commits"],
                        "met": row.ms_per_node <= FOREACH_TARGET_MS and checked})
    flatness = []
    for mode in FOREACH_FM_MODES:
        a = _find(rows, "fm_lab", "foreach", small, mode)
        b = _find(rows, "fm_lab", "foreach", large, mode)
        if a and b:
            ratio = b.ms_per_node / a.ms_per_node
            flatness.append({"mode": mode, "small": small, "large": large, "ratio": ratio,
                             "met": ratio <= FLATNESS_TARGET})
    lg_n = sizes.lg_foreach
    fm_n = lg_n if lg_n in sizes.foreach else small  # the fm_lab size the ratio is taken at
    ratio = None
    fm = _find(rows, "fm_lab", "foreach", fm_n, "fsync")
    lg = _find(rows, "langgraph", "foreach", lg_n, "sqlite")
    fm_mem = _find(rows, "fm_lab", "foreach", fm_n, "memory")
    lg_mem = _find(rows, "langgraph", "foreach", lg_n, "memory")
    if fm and lg:
        ratio = {"fm_lab_n": fm_n, "langgraph_n": lg_n,
                 "langgraph_sqlite_ms": lg.ms_per_node, "fm_lab_fsync_ms": fm.ms_per_node,
                 "ratio": lg.ms_per_node / fm.ms_per_node,
                 "memory_ratio": (lg_mem.ms_per_node / fm_mem.ms_per_node
                                  if fm_mem and lg_mem else None)}
    return {"durable": durable, "flatness": flatness, "ratio": ratio,
            "targets": {"durable_ms_per_item": {"target": FOREACH_TARGET_MS,
                                                "met": bool(durable)
                                                and all(d["met"] for d in durable)},
                        "flatness": {"target": FLATNESS_TARGET,
                                     "met": bool(flatness)
                                     and all(f["met"] for f in flatness)}}}


def render_foreach(rows: list[Row], summary: dict[str, Any], sizes: Sizes) -> str:
    out = io.StringIO()
    w = out.write
    cols = (*PHASES, "rest")
    head = (f"{'n':>7}  {'engine':<10}{'mode':<8}{'ms/item':>9}  |"
            + "".join(f"{c:>9}" for c in cols)
            + f"  |{'checkpoints':>12}{'commits':>9}  |  runs (ms/item)\n")
    w(f"\nForeach: one foreach node over N no-op items (items: \"{{{{ inputs.xs }}}}\", "
      f"concurrency {FOREACH_CONCURRENCY}),\nms per item, median of {sizes.reps} runs; the "
      "split and checks are the median run's\n")
    w(head)
    w("-" * (len(head) + 12) + "\n")
    order = {(e, m): i for i, (e, m) in enumerate(
        [("fm_lab", m) for m in FOREACH_FM_MODES] + [("langgraph", m) for m in LG_MODES])}
    for row in sorted((r for r in rows if r.graph == "foreach"),
                      key=lambda r: (order[r.engine, r.mode] // 2, r.n, order[r.engine, r.mode])):
        runs = ", ".join(f"{v:.4f}" for v in row.runs_ms_per_node)
        split = row.split_ms_per_node or {}
        checks = row.checks
        chk = (f"{checks['checkpoints']:>12}{checks['commits']:>9}" if checks
               else f"{'-':>12}{'-':>9}")
        w(f"{row.n:>7}  {row.engine:<10}{row.mode:<8}{row.ms_per_node:>9.4f}  |"
          + "".join(_f(split.get(c), 9) for c in cols) + f"  |{chk}  |  [{runs}]\n")
    w("  checkpoints: item rows (loop[i]) in DuckDB's node_executions; commits: journal group "
      "commits (one write + fsync each; 0 in memory)\n")
    t = summary["targets"]
    w(f"\nfm_lab durable (fsync) <= {FOREACH_TARGET_MS:g} ms/item, every item checkpointed: "
      f"{'MET' if t['durable_ms_per_item']['met'] else 'MISSED'}\n")
    for d in summary["durable"]:
        w(f"  {d['n']:>7} items: {d['ms_per_item']:.4f} ms/item, {d['checkpoints']:,} item "
          f"checkpoints, {d['commits']:,} commits (~{d['n'] / max(d['commits'], 1):.0f} "
          f"items/commit)  {'MET' if d['met'] else 'MISSED'}\n")
    small, large = sizes.foreach
    w(f"Foreach flatness, fm_lab ms/item at {large:,} / at {small:,} (target <= "
      f"{FLATNESS_TARGET:g}x): {'MET' if t['flatness']['met'] else 'MISSED'}\n")
    for f in summary["flatness"]:
        w(f"  {f['mode']:<8}: {f['ratio']:6.2f}x  {'MET' if f['met'] else 'MISSED'}\n")
    r = summary["ratio"]
    if r is not None:
        at = (f"{r['fm_lab_n']:,} items" if r["fm_lab_n"] == r["langgraph_n"]
              else f"LangGraph {r['langgraph_n']:,} / fm_lab {r['fm_lab_n']:,} items")
        mem = "" if r["memory_ratio"] is None else f"   (in-memory: {r['memory_ratio']:.2f}x)"
        w(f"LangGraph+SqliteSaver(sync) / fm_lab(fsync), per item, at {at}: "
          f"{r['langgraph_sqlite_ms']:.4f} / {r['fm_lab_fsync_ms']:.4f} = "
          f"{r['ratio']:.1f}x{mem}\n")
    return out.getvalue()


# ---- reporting ---------------------------------------------------------------------------------
def _find(rows: list[Row], engine: str, graph: str, n: int, mode: str) -> Row | None:
    for row in rows:
        if (row.engine, row.graph, row.n, row.mode) == (engine, graph, n, mode):
            return row
    return None


def summarise(rows: list[Row], sizes: Sizes) -> dict[str, Any]:
    ratios = []
    for graph in ("chain", "fanout"):
        for n in sorted({r.n for r in rows if r.graph == graph}):
            fm = _find(rows, "fm_lab", graph, n, "fsync")
            lg = _find(rows, "langgraph", graph, n, "sqlite")
            fm_mem = _find(rows, "fm_lab", graph, n, "memory")
            lg_mem = _find(rows, "langgraph", graph, n, "memory")
            if fm is None or lg is None:
                continue
            ratios.append({
                "graph": graph, "n": n,
                "langgraph_sqlite_ms": lg.ms_per_node, "fm_lab_fsync_ms": fm.ms_per_node,
                "ratio": lg.ms_per_node / fm.ms_per_node,
                "memory_ratio": (lg_mem.ms_per_node / fm_mem.ms_per_node
                                 if fm_mem and lg_mem else None),
                # the issue sets the target on a 1,000-node chain and a 5,000-node fan-out;
                # other sizes are shown for information
                "met": (lg.ms_per_node / fm.ms_per_node >= SPEEDUP_TARGET
                        if TARGET_SIZES.get(graph) == n else None),
            })
    small, large = sizes.flatness
    flatness = []
    for mode in FM_MODES:
        a = _find(rows, "fm_lab", "chain", small, mode)
        b = _find(rows, "fm_lab", "chain", large, mode)
        if a and b:
            ratio = b.ms_per_node / a.ms_per_node
            excl = None
            if a.split_ms_per_node and b.split_ms_per_node:
                excl = ((b.ms_per_node - b.split_ms_per_node["plan"])
                        / (a.ms_per_node - a.split_ms_per_node["plan"]))
            flatness.append({"mode": mode, "small": small, "large": large, "ratio": ratio,
                             "ratio_excluding_plan": excl, "met": ratio <= FLATNESS_TARGET})
    judged = [r for r in ratios if r["met"] is not None]
    speed_met = all(r["met"] for r in judged) if judged else None
    flat_met = bool(flatness) and all(f["met"] for f in flatness)
    return {"ratios": ratios, "flatness": flatness,
            "targets": {"speedup_vs_langgraph_sqlite": {"target": SPEEDUP_TARGET,
                                                          "met": speed_met},
                        "chain_flatness": {"target": FLATNESS_TARGET, "met": flat_met}}}


def _verdict(met: bool | None) -> str:
    return "not judged at these sizes" if met is None else "MET" if met else "MISSED"


def _f(value: float | None, width: int, digits: int = 4) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def render(rows: list[Row], summary: dict[str, Any], sizes: Sizes) -> str:
    out = io.StringIO()
    w = out.write
    cols = (*PHASES, "rest")
    head = (f"{'graph':<7}{'n':>7}  {'engine':<10}{'mode':<8}{'ms/node':>9}  |"
            + "".join(f"{c:>9}" for c in cols) + "  |  runs (ms/node)\n")
    w(f"\nPer-node overhead, median of {sizes.reps} runs; the split (ms/node) is the median "
      "run's\n")
    w(head)
    w("-" * (len(head) + 12) + "\n")
    order = {(e, m): i for i, (e, m) in enumerate(
        [("fm_lab", m) for m in FM_MODES] + [("langgraph", m) for m in LG_MODES])}
    for row in sorted(rows, key=lambda r: (r.graph, r.n, order[r.engine, r.mode])):
        runs = ", ".join(f"{v:.3f}" for v in row.runs_ms_per_node)
        split = row.split_ms_per_node or {}
        w(f"{row.graph:<7}{row.n:>7}  {row.engine:<10}{row.mode:<8}{row.ms_per_node:>9.4f}  |"
          + "".join(_f(split.get(c), 9) for c in cols) + f"  |  [{runs}]\n")
    w("  plan: validate + Plan; begin: start_record; journal: append + commit (write, fsync); "
      "ingest: into DuckDB; rest: scheduler, asyncio, the rest of fm_lab.run\n")
    w("\nLangGraph+SqliteSaver(sync) / fm_lab(fsync), per node "
      f"(target >= {SPEEDUP_TARGET:g}x)\n")
    for r in summary["ratios"]:
        mem = "" if r["memory_ratio"] is None else f"   (in-memory: {r['memory_ratio']:.2f}x)"
        w(f"  {r['graph']:<7}{r['n']:>7}: {r['langgraph_sqlite_ms']:.4f} / "
          f"{r['fm_lab_fsync_ms']:.4f} = {r['ratio']:6.2f}x  "
          f"{'info' if r['met'] is None else 'MET' if r['met'] else 'MISSED'}{mem}\n")
    small, large = sizes.flatness
    w(f"\nChain flatness, fm_lab ms/node at {large} / at {small} "
      f"(target <= {FLATNESS_TARGET:g}x)\n")
    for f in summary["flatness"]:
        excl = ("" if f["ratio_excluding_plan"] is None
                else f"   (excluding plan: {f['ratio_excluding_plan']:.2f}x)")
        w(f"  {f['mode']:<8}: {f['ratio']:6.2f}x  {'MET' if f['met'] else 'MISSED'}{excl}\n")
    t = summary["targets"]
    w(f"\nTargets: speed-up >= {SPEEDUP_TARGET:g}x: "
      f"{_verdict(t['speedup_vs_langgraph_sqlite']['met'])}; "
      f"flatness <= {FLATNESS_TARGET:g}x: {'MET' if t['chain_flatness']['met'] else 'MISSED'}\n")
    return out.getvalue()


# ---- fixed cost of a short run -------------------------------------------------------------------
FIXED_PAIRS = (("fsync", "sqlite"), ("at_end", "sqlite"), ("held", "sqlite"),
               ("process", "sqlite"), ("memory", "memory"), ("python", "memory"))
FIXED_ROUNDS = 3  # timed blocks per engine and mode, alternating (after one warm-up block each)


def _fixed_store(fm_mode: str, tmp: str) -> Any:
    if fm_mode == "memory":
        return fm_lab.Store(":memory:")
    if fm_mode == "python":
        return fm_lab.connect("memory://")
    path = os.path.join(tmp, f"fixed_{fm_mode}.duckdb")
    if fm_mode == "at_end":  # each run stored at its end (no groups outside a hold)
        return fm_lab.Store(path, group_delay_s=0)
    return fm_lab.Store(path, durability="process" if fm_mode == "process" else "fsync")


def _block(call: Callable[[], object], count: int,
           scope: Callable[[], contextlib.AbstractContextManager[Any]],
           settle: Callable[[], None]) -> tuple[list[float], float]:
    """``count`` calls back to back inside ``scope()``, then ``settle()``: each call's
    seconds, and the block's wall time per call (whatever the calls left to a background
    thread, the scope's end and the settling included)."""
    gc.collect()
    laps = []
    start = time.perf_counter()
    with scope():
        for _ in range(count):
            t0 = time.perf_counter()
            call()
            laps.append(time.perf_counter() - t0)
    settle()
    return laps, (time.perf_counter() - start) / count


def _fixed_pair(fm_mode: str, lg_mode: str, tmp: str, runs: int) -> dict[str, Any]:
    """One row of the fixed-cost table (see :func:`run_fixed`)."""
    spec = chain_spec(FIXED_N)
    store = _fixed_store(fm_mode, tmp)
    lg = peer.ReusedChain(FIXED_N, None if lg_mode == "memory"
                          else os.path.join(tmp, f"fixed_{fm_mode}.sqlite"))

    def ours_once() -> None:
        result = fm_lab.run(spec, store=store)
        if result.status != "succeeded":
            raise RuntimeError(f"fm_lab fixed-cost run: {result.status}")

    def scope() -> contextlib.AbstractContextManager[Any]:
        return store.hold() if fm_mode == "held" else contextlib.nullcontext()

    def settle() -> None:  # what is still queued goes in (a no-op when nothing is)
        if hasattr(store, "store_groups"):
            store.store_groups()

    ours: list[float] = []
    theirs: list[float] = []
    ours_blocks: list[float] = []
    theirs_blocks: list[float] = []
    try:
        for block in range(FIXED_ROUNDS + 1):  # the first block warms both up (imports)
            laps, per_run = _block(ours_once, runs, scope, settle)
            lg_laps, lg_per_run = _block(lg.invoke, runs, contextlib.nullcontext,
                                         lambda: None)
            if block:
                ours += laps
                theirs += lg_laps
                ours_blocks.append(per_run)
                theirs_blocks.append(lg_per_run)
    finally:
        store.close()
        lg.close()
    return {
        "fm_lab_mode": fm_mode, "langgraph_mode": lg_mode,
        "fm_lab_ms": _ms_stats(ours), "langgraph_ms": _ms_stats(theirs),
        "ratio": statistics.median(ours) / statistics.median(theirs),
        "fm_lab_mean_ms": statistics.mean(ours_blocks) * 1000,
        "langgraph_mean_ms": statistics.mean(theirs_blocks) * 1000,
    }


def run_fixed(runs: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The fixed-cost section: per pair (fm_lab mode, LangGraph mode), blocks of ``runs``
    10-node runs back to back, the engines alternating block by block: each run's ms (median,
    p90: what a cell waits for) and each block's ms per run (mean: what a loop pays, with what
    the runs left to store in the background)."""
    table: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fm_fixed_") as tmp:
        for fm_mode, lg_mode in FIXED_PAIRS:
            log(f"fixed cost: fm_lab {fm_mode} / langgraph {lg_mode}")
            table[f"{fm_mode}/{lg_mode}"] = _fixed_pair(fm_mode, lg_mode, tmp, runs)
    return {"n": FIXED_N, "runs": runs, "rounds": FIXED_ROUNDS, "pairs": table}


def _ms_stats(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"median": statistics.median(ordered) * 1000,
            "p90": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000}


def render_fixed(fixed: dict[str, Any]) -> str:
    """The fixed-cost table."""
    lines = [f"\nFixed cost of a short run: a {fixed['n']}-node no-op chain, run again in the "
             f"same process ({fixed['rounds']} blocks of {fixed['runs']} runs back to back "
             "per engine, alternating; ms per run: each run's median / p90, and each block's "
             "wall time per run, storing included)",
             f"{'fm_lab':<9}{'langgraph':<11}{'fm_lab':>16}{'langgraph':>16}{'ratio':>8}"
             f"{'per run in a loop':>22}{'ratio':>8}"]
    for row in fixed["pairs"].values():
        ours, theirs = row["fm_lab_ms"], row["langgraph_ms"]
        ours_mean, theirs_mean = row["fm_lab_mean_ms"], row["langgraph_mean_ms"]
        lines.append(f"{row['fm_lab_mode']:<9}{row['langgraph_mode']:<11}"
                     f"{ours['median']:>8.1f} / {ours['p90']:<5.1f}"
                     f"{theirs['median']:>8.1f} / {theirs['p90']:<5.1f}{row['ratio']:>7.2f}x"
                     f"{ours_mean:>14.1f} / {theirs_mean:<5.1f}"
                     f"{ours_mean / theirs_mean:>7.2f}x")
    lines.append("(fm_lab: one file store reused, dict spec. 'fsync': the defaults (each node "
                 "durable in the run's journal, finished short runs stored in DuckDB in groups "
                 "a moment later, on a background thread: its work counts in the block's "
                 "time); 'at_end': each run stored in DuckDB at its end "
                 "(Store(group_delay_s=0)); 'held': inside store.hold() for the block (as a "
                 "sweep holds it), groups of 64 and the hold's end; 'process': journal "
                 "written but not fsynced; 'memory': an in-memory DuckDB store (SQL, no "
                 "journal); 'python': connect('memory://'), runs kept in Python objects, the "
                 "engine alone. langgraph: compiled graph and SqliteSaver reused, "
                 "durability='sync', or no checkpointer)")
    return "\n".join(lines) + "\n"


def environment() -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(),
            **{name: version(name) for name in ("fm_lab", "duckdb", "pyarrow", "pydantic",
                                                  "langgraph", "langgraph-checkpoint-sqlite")}}


# ---- profiling ---------------------------------------------------------------------------------
def profile(target: str, top: int) -> None:
    """cProfile one fm_lab run, ``GRAPH:N:MODE`` (e.g. ``chain:10000:fsync``)."""
    graph, n_text, mode = target.split(":")
    n = int(n_text)
    fm_once(graph, 20, mode)  # warm-up
    wf = fm_lab.Workflow.from_dict(SPECS[graph](n))
    inputs = INPUTS[graph](n) if graph in INPUTS else None
    with tempfile.TemporaryDirectory(prefix="fm_prof_") as tmp:
        store = open_store(mode, tmp)
        profiler = cProfile.Profile()
        gc.collect()
        t0 = time.perf_counter()
        profiler.enable()
        result = fm_lab.run(wf, inputs, store=store)
        profiler.disable()
        elapsed = time.perf_counter() - t0
        if result.status != "succeeded":
            raise RuntimeError(f"fm_lab {graph} {n} {mode}: run {result.status}")
        if graph == "foreach":
            foreach_checks(result, store, n)
        store.close()
    print(f"fm_lab {graph} n={n} {mode}: {elapsed * 1000 / n:.4f} ms/node under cProfile "
          f"({elapsed:.2f} s)")
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).strip_dirs().sort_stats(key).print_stats(top)
        print(buf.getvalue())


# ---- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (well under a minute)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON to PATH")
    parser.add_argument("--reps", type=int, default=None, help="runs per figure (odd; default 3)")
    parser.add_argument("--profile", metavar="GRAPH:N:MODE",
                        help="cProfile one fm_lab run instead (e.g. chain:10000:fsync)")
    parser.add_argument("--top", type=int, default=25, help="rows of --profile output")
    parser.add_argument("--section", choices=("all", "graphs", "foreach", "fixed"),
                        default="all", help="run the chain/fanout graphs, the foreach section, "
                        "the fixed cost of a short run, or all three")
    args = parser.parse_args(argv)

    if args.profile:
        profile(args.profile, args.top)
        return 0

    sizes = dataclasses.replace(QUICK if args.quick else FULL, notes=[])
    if args.reps is not None:
        if args.reps < 1 or args.reps % 2 == 0:
            parser.error("--reps must be an odd number >= 1")
        sizes.reps = args.reps
    graphs = args.section in ("all", "graphs")
    foreach = args.section in ("all", "foreach")
    fixed_section = args.section in ("all", "fixed")
    if graphs:
        sizes.notes.append("fanout divides by N (the parallel nodes), not N+2; LangGraph's peer "
                          "divides by N too.")
    if foreach:
        sizes.notes.append(
            "foreach: the run inputs carry no JSON schema (a declared "
            "{xs: {type: array, items: {type: integer}}} adds its validation, ~3 us/item); "
            "LangGraph's figure is foreach_send (Send per item, operator.add reduce, "
            f"max_concurrency {FOREACH_CONCURRENCY}).")
    sizes.notes.append("store/checkpointer set-up is untimed: fm_lab schema created before "
                      "the clock, SqliteSaver.setup() likewise; imports warmed up first.")

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    log("warming up ...")
    if graphs:
        warm_up()
    if foreach:
        warm_up_foreach()
    probe_before = fsync_probe()
    rows = run_all(sizes, log) if graphs else []
    foreach_rows = run_foreach(sizes, log) if foreach else []
    fixed = run_fixed(15 if args.quick else FIXED_RUNS, log) if fixed_section else None
    probe_after = fsync_probe()
    summary = summarise(rows, sizes) if graphs else {}
    foreach_summary = summarise_foreach(foreach_rows, sizes) if foreach else None
    summary["fsync_probe"] = {"before": probe_before, "after": probe_after}
    sizes.notes.append(
        "this disk's append+fsync latency, median/p90 in ms: "
        f"before {probe_before['median_ms']:.3f}/{probe_before['p90_ms']:.3f}, "
        f"after {probe_after['median_ms']:.3f}/{probe_after['p90_ms']:.3f} "
        "(a durable chain node cannot cost less than one fsync).")
    elapsed = time.perf_counter() - started
    if graphs:
        print(render(rows, summary, sizes), end="")
    if foreach_summary is not None:
        print(render_foreach(foreach_rows, foreach_summary, sizes), end="")
    if fixed is not None:
        print(render_fixed(fixed), end="")
    print()
    for note in sizes.notes:
        print(f"Note: {note}")
    print(f"(benchmark wall time {elapsed:.0f} s)")
    if args.json:
        doc = {"quick": args.quick, "section": args.section, "sizes": asdict(sizes),
               "environment": environment(), "rows": [asdict(r) for r in rows], **summary,
               "foreach": ({"rows": [asdict(r) for r in foreach_rows], **foreach_summary}
                           if foreach_summary is not None else None),
               "fixed": fixed, "wall_s": elapsed}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
