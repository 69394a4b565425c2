"""Dask batches: workers write Parquet shards (never the DuckDB file) that traces()/usage()
read like local runs; a worker killed mid-batch loses no item."""

from __future__ import annotations

import os
import signal
from typing import Any

import pandas as pd
import pytest

import fm_lab
import fm_lab.batch
from fm_lab.store.base import shard_dir

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

distributed = pytest.importorskip("distributed")

LLM_FLOW = {
    "id": "dask_sweep",
    "inputs": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
    "nodes": {
        "double": {"type": "template", "config": {"template": "{{ inputs.x * 2 }}"}},
        "ask": {"type": "llm", "config": {"model": "offline/echo",
                                          "prompt": "twice is {{ nodes.double.output }}"}},
    },
    "edges": ["double -> ask"],
}
SLOW_FLOW = {
    "id": "dask_slow",
    "inputs": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
    "nodes": {
        "nap": {"type": "sleep", "config": {"seconds": 0.15}},
        "echo": {"type": "template", "config": {"template": "item {{ inputs.x }}"}},
    },
    "edges": ["nap -> echo"],
}


@pytest.fixture
def thread_client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=4, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_200_items_on_dask_write_shards_that_usage_reads(store, thread_client):
    frame = pd.DataFrame({"x": range(200)})
    out = fm_lab.batch.map(LLM_FLOW, frame, executor=thread_client, batch_id="d200",
                           store=store)
    assert (out["status"] == "succeeded").all() and len(out) == 200
    assert out.loc[7, "outputs"] == {"ask": "(offline) twice is 14"}
    folder = shard_dir(store)  # None: a server store, which the workers wrote directly
    if folder is not None:
        shards = sorted((folder / "d200" / "items").iterdir())
        assert len(shards) == 200
        assert {p.name for p in shards[0].iterdir()} == {
            "runs.parquet", "node_executions.parquet", "spans.parquet"}
    # the DuckDB file got the batch rows only (runs and spans live in the shards); the
    # PostgreSQL store got everything from the workers themselves
    in_tables = 0 if folder is not None else 200
    assert fm_lab.sql("select count(*) as n from runs", store=store)["n"][0] == in_tables
    assert fm_lab.sql("select count(*) as n from spans where kind = 'llm'",
                      store=store)["n"][0] == in_tables
    usage = fm_lab.usage("model", store=store)
    assert usage.loc[0, "model"] == "offline/echo" and usage.loc[0, "calls"] == 200
    assert usage.loc[0, "input_tokens"] == out["input_tokens"].sum() > 0
    assert len(fm_lab.traces(kind="llm", limit=None, store=store)) == 200
    assert len(fm_lab.runs(limit=None, store=store)) == 200
    tree = fm_lab.trace(out.loc[3, "run_id"], store=store)
    assert list(tree["kind"]) == ["batch_item", "workflow", "node", "node", "llm"]
    assert fm_lab.usage("run", run_id=out.loc[3, "run_id"], store=store)["calls"][0] == 1

    # the driver died before recording some items: their stored runs are taken as done
    def stamp() -> Any:
        if folder is not None:
            return {p.name: (p / "runs.parquet").stat().st_mtime_ns for p in shards}
        return fm_lab.sql("select run_id, journal_seq, count(*) over () as n from runs "
                          "order by run_id", store=store).to_dict("records")

    before = stamp()
    fm_lab.sql("delete from batch_items where item_index >= 150", store=store)
    again = fm_lab.batch.map(LLM_FLOW, frame, executor=thread_client, batch_id="d200",
                             store=store)
    assert (again["status"] == "succeeded").all() and len(again) == 200
    assert stamp() == before  # nothing ran again


def test_a_worker_killed_mid_batch_loses_no_item(store):
    items = [{"x": i} for i in range(24)]
    killed: list[int] = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        pids = client.run(os.getpid)

        def kill_one(item: fm_lab.batch.Item) -> None:
            if not killed:  # the first result is in: the others are in flight
                victim = next(iter(pids.values()))
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        out = fm_lab.batch.map(SLOW_FLOW, items, executor=client, batch_id="kill",
                               store=store, on_item=kill_one)
        assert killed and killed[0] not in client.run(os.getpid).values()  # it really died
    assert (out["status"] == "succeeded").all() and len(out) == 24
    assert [o["echo"] for o in out["outputs"]] == [f"item {i}" for i in range(24)]
    runs = fm_lab.sql("select run_id, count(*) as n from all_runs group by 1", store=store)
    assert len(runs) == 24 and (runs["n"] == 1).all()  # every item once, none twice
    folder = shard_dir(store)
    if folder is not None:
        assert len(list((folder / "kill" / "items").iterdir())) == 24



def test_dask_workers_run_restricted_unless_the_submitter_says_otherwise(store, store_path,
                                                                          thread_client):
    """What runs on workers defaults to restricted: an import path no one allowed fails
    every item before anything runs; the submitter's explicit choice travels with the items,
    and the same sweep run locally keeps the store's default (trusted for a DuckDB file)."""
    flow = {"id": "dask_policy", "nodes": {"strip": {"type": "code", "config": {
        "function": "textwrap:dedent", "args": {"text": "  item {{ inputs.x }}"}}}}}
    items = [{"x": i} for i in range(3)]
    refused = fm_lab.batch.map(flow, items, executor=thread_client, batch_id="p1", store=store)
    assert (refused["status"] == "failed").all() and refused["run_id"].isna().all()
    assert all("'textwrap:dedent' is not allowed by the restricted policy" in e["message"]
               for e in refused["error"])
    allowed = fm_lab.batch.map(flow, items, executor=thread_client, batch_id="p2",
                               store=store, policy="trusted")
    assert (allowed["status"] == "succeeded").all()
    assert [o["strip"] for o in allowed["outputs"]] == ["item 0", "item 1", "item 2"]
    assert set(fm_lab.runs(store=store)["policy"]) == {"trusted"}
    local = fm_lab.batch.map(flow, items, batch_id="p3", store=store)
    assert (local["status"] == "succeeded").all()
