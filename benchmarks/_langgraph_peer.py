"""LangGraph as a peer for the fm_lab engine-overhead benchmark.

Each function builds and compiles a LangGraph ``StateGraph`` of no-op nodes
(untimed), then times a single ``graph.invoke(...)`` and returns milliseconds
per node (or per item for ``foreach_send``).

``db_path=None`` means **no checkpointer at all** (pure in-process framework
overhead, not ``InMemorySaver``).  A path means a ``SqliteSaver`` on a fresh
sqlite file at that path (any existing file plus ``-wal``/``-shm`` companions is
removed first), ``.setup()`` called before timing, and the graph invoked with
``durability="sync"`` (each superstep's checkpoint is persisted before the next
superstep starts).  ``SqliteSaver.setup()`` switches the database to WAL mode;
sqlite's default ``synchronous=FULL`` is left untouched.
"""

from __future__ import annotations

import contextlib
import operator
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from _langgraph_chain import chain_builder


class ChainState(TypedDict, total=False):
    """State for chain/fanout graphs; the no-op nodes never write to it."""

    count: int


class MapState(TypedDict, total=False):
    """State for the Send map step: input items and reduced results."""

    items: list[int]
    results: Annotated[list[int], operator.add]


class WorkerInput(TypedDict):
    """Payload delivered to the worker by each ``Send``."""

    item: int


def _noop(state: ChainState) -> dict[str, Any]:
    """No-op node: no state update."""
    return {}


def _worker(payload: WorkerInput) -> dict[str, Any]:
    """No-op map worker: contributes its item to the reduced ``results`` list."""
    return {"results": [payload["item"]]}


def _fan(state: MapState) -> list[Send]:
    """Conditional edge from START: one ``Send`` per item."""
    return [Send("worker", {"item": i}) for i in state["items"]]


def _fresh_saver(db_path: str) -> tuple[SqliteSaver, sqlite3.Connection]:
    """Open a SqliteSaver on a brand-new sqlite file and create its tables."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(db_path + suffix)
    conn = sqlite3.connect(db_path, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver, conn


def _timed_invoke(
    builder: StateGraph,
    payload: dict[str, Any],
    db_path: str | None,
    recursion_limit: int,
    max_concurrency: int | None = None,
) -> tuple[float, dict[str, Any]]:
    """Compile (untimed) and time one invoke; return (seconds, final state)."""
    config: dict[str, Any] = {"recursion_limit": recursion_limit}
    if max_concurrency is not None:
        config["max_concurrency"] = max_concurrency
    conn: sqlite3.Connection | None = None
    kwargs: dict[str, Any] = {}
    if db_path is None:
        graph = builder.compile()
    else:
        saver, conn = _fresh_saver(db_path)
        graph = builder.compile(checkpointer=saver)
        config["configurable"] = {"thread_id": uuid.uuid4().hex}
        kwargs["durability"] = "sync"
    try:
        t0 = time.perf_counter()
        out = graph.invoke(payload, config, **kwargs)
        elapsed = time.perf_counter() - t0
    finally:
        if conn is not None:
            conn.close()
    return elapsed, out


def _chain_builder(n: int) -> StateGraph:
    """node_0 -> ... -> node_{n-1}, no-op nodes."""
    return chain_builder(n, ChainState, _noop)


def chain(n: int, db_path: str | None) -> float:
    """Chain node_0 -> ... -> node_{n-1} of no-op nodes; ms per node.

    ``db_path=None``: no checkpointer.  Path: SqliteSaver, ``durability="sync"``
    (one checkpoint per superstep, i.e. per node).
    """
    elapsed, _ = _timed_invoke(_chain_builder(n), {"count": 0}, db_path, n + 10)
    return elapsed * 1000.0 / n


class ReusedChain:
    """A compiled n-node chain whose checkpointer (a ``SqliteSaver`` on ``db_path``, or none)
    is set up once and reused by every :meth:`invoke`: LangGraph's per-run fixed cost in a
    long-lived process (each invoke is a new thread id, ``durability="sync"``)."""

    def __init__(self, n: int, db_path: str | None) -> None:
        self.conn: sqlite3.Connection | None = None
        if db_path is None:
            self.graph = _chain_builder(n).compile()
        else:
            saver, self.conn = _fresh_saver(db_path)
            self.graph = _chain_builder(n).compile(checkpointer=saver)
        self.limit = n + 10

    def invoke(self) -> float:
        """One run; its wall time in seconds."""
        config: dict[str, Any] = {"recursion_limit": self.limit}
        kwargs: dict[str, Any] = {}
        if self.conn is not None:
            config["configurable"] = {"thread_id": uuid.uuid4().hex}
            kwargs["durability"] = "sync"
        t0 = time.perf_counter()
        self.graph.invoke({"count": 0}, config, **kwargs)
        return time.perf_counter() - t0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def fanout(n: int, db_path: str | None) -> float:
    """START -> n parallel no-op nodes (one superstep) -> join -> END; ms per node.

    Each branch has its own edge to ``join``; as all branches finish in the same
    superstep, ``join`` runs exactly once in the following superstep.
    """
    builder = StateGraph(ChainState)
    names = [f"node_{i}" for i in range(n)]
    for name in names:
        builder.add_node(name, _noop)
        builder.add_edge(START, name)
        builder.add_edge(name, "join")
    builder.add_node("join", _noop)
    builder.add_edge("join", END)
    elapsed, _ = _timed_invoke(builder, {"count": 0}, db_path, n + 10)
    return elapsed * 1000.0 / n


def foreach_send(n: int, db_path: str | None, concurrency: int = 64) -> float:
    """Map n items via ``Send`` to one no-op worker, reduce with ``operator.add``.

    Runs with ``max_concurrency=concurrency``; SqliteSaver + ``durability="sync"``
    when ``db_path`` is given.  Returns ms per item.
    """
    builder = StateGraph(MapState)
    builder.add_node("worker", _worker)
    builder.add_conditional_edges(START, _fan, ["worker"])
    builder.add_edge("worker", END)
    elapsed, out = _timed_invoke(builder, {"items": list(range(n))}, db_path, n + 10, concurrency)
    if sorted(out["results"]) != list(range(n)):
        raise RuntimeError("foreach_send: reduced results do not match the items")
    return elapsed * 1000.0 / n


def _main() -> None:
    """Print a small table of ms/node figures, in memory and with sqlite."""
    cases: list[tuple[str, Callable[[int, str | None], float], int]] = [
        ("chain", chain, 250),
        ("chain", chain, 1000),
        ("fanout", fanout, 250),
        ("fanout", fanout, 1000),
        ("foreach_send", foreach_send, 1000),
    ]
    print(f"{'case':<14}{'n':>6}{'memory ms/node':>16}{'sqlite ms/node':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn, n in cases:
            mem = fn(n, None)
            disk = fn(n, os.path.join(tmp, f"{name}_{n}.sqlite"))
            print(f"{name:<14}{n:>6}{mem:>16.3f}{disk:>16.3f}")


if __name__ == "__main__":
    _main()
