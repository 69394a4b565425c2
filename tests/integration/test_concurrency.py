"""Independent branches run at the same time; ``max_concurrency`` bounds nodes in flight."""

from __future__ import annotations

import asyncio
import threading
import time

import pandas as pd
import pytest

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

NAP_S = 0.3


def _fan_out(function: str, count: int, **fields) -> fm_lab.Workflow:
    """start -> n0..n{count-1} -> join (merge)."""
    b = fm_lab.WorkflowBuilder(f"fan_out_{count}", **fields)
    start = b.node("start", "template", template="go")
    join = b.node("join", "merge", mode="dict")
    for i in range(count):
        node = b.node(f"n{i}", "code", function=function, args={"i": i})
        start >> node
        node >> join
    return b.build()


def _intervals(run: fm_lab.Run, count: int) -> pd.DataFrame:
    df = run.nodes_df().set_index("node_id").loc[[f"n{i}" for i in range(count)]]
    assert set(df["status"]) == {"succeeded"}
    return df[["started_at", "ended_at"]]


def _assert_all_overlap(df: pd.DataFrame) -> None:
    # every interval contains the moment the last one started
    assert df["started_at"].max() < df["ended_at"].min(), df


@pytest.mark.parametrize("count", [2, 3])
def test_async_branches_overlap(store, register, count):
    started: list[int] = []
    started_when_finishing: list[int] = []

    async def nap(i: int) -> int:
        started.append(i)
        await asyncio.sleep(NAP_S)
        started_when_finishing.append(len(started))
        return i

    name = register(nap)
    workflow = _fan_out(name, count)
    run = fm_lab.run(workflow, store=store)

    assert run.status == "succeeded", run.error
    assert run.outputs == {"join": {f"n{i}": i for i in range(count)}}
    # every branch had started before the first one finished (one after another, the first
    # to finish would have seen only itself started); no wall-time bound, which load breaks
    assert started_when_finishing == [count] * count
    _assert_all_overlap(_intervals(run, count))


def test_sync_functions_run_in_threads_and_overlap(store, register):
    threads: set[int] = set()
    lock = threading.Lock()
    all_in = threading.Barrier(3)  # passes only once all three run at the same time

    def blocking_nap(i: int) -> int:
        with lock:
            threads.add(threading.get_ident())
        all_in.wait(timeout=60)  # the timeout is a hang guard; a broken barrier fails the node
        return i * 10

    name = register(blocking_nap)
    run = fm_lab.run(_fan_out(name, 3), store=store)

    assert run.status == "succeeded", run.error
    assert run.outputs == {"join": {"n0": 0, "n1": 10, "n2": 20}}
    df = _intervals(run, 3)
    _assert_all_overlap(df)
    assert threading.get_ident() not in threads
    assert len(threads) == 3


class _InFlight:
    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def nap(self, i: int) -> int:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0.05)
        finally:
            self.now -= 1
        return i


@pytest.mark.parametrize(("limit", "expected_peak"), [(None, 6), (2, 2), (1, 1)])
def test_max_concurrency_bounds_nodes_in_flight(store, register, limit, expected_peak):
    counter = _InFlight()
    name = register(counter.nap)
    fields = {} if limit is None else {"max_concurrency": limit}

    run = fm_lab.run(_fan_out(name, 6, **fields), store=store)

    assert run.status == "succeeded", run.error
    assert run.outputs == {"join": {f"n{i}": i for i in range(6)}}
    assert counter.peak == expected_peak
    assert counter.now == 0
    if limit == 1:  # strictly one after another in the stored timings too
        df = _intervals(run, 6).sort_values("started_at")
        assert (df["started_at"].iloc[1:].to_numpy() >= df["ended_at"].iloc[:-1].to_numpy()).all()


def test_max_concurrency_bounds_sync_threads(store, register):
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def blocking(i: int) -> int:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return i

    name = register(blocking)
    run = fm_lab.run(_fan_out(name, 5, max_concurrency=2), store=store)

    assert run.status == "succeeded", run.error
    assert state["peak"] == 2
