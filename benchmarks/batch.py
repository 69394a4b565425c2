"""Batch runs: a 1,000-row workflow sweep locally and on Dask, and a notebook batch against a
plain papermill loop.

Workflow sweep (each row: a template node, an ``llm`` node on the offline echo model, a
template on its answer; one fresh file store per path):

1. ``plain loop``: ``fm_lab.run`` per row, one after the other, no batch bookkeeping: the
   cost of the work itself.
2. ``map local``: ``fm_lab.batch.map(executor="local")`` with concurrency 1 (the same work as
   the loop plus the batch's bookkeeping: item rows and spans, trace links) and 16 (asyncio in
   this process).
3. ``map dask``: ``fm_lab.batch.map`` on a ``LocalCluster(n_workers=2, processes=True)``: each
   worker runs items on a memory store and writes Parquet shards; cluster start-up is reported
   apart (a long-lived cluster pays it once).

Notebook batch (a notebook with a parameters cell, a cell that runs a small workflow through
``fm_lab.run`` and a cell that computes on the parameters):

4. ``papermill loop``: ``papermill.execute_notebook`` per item, one after the other.
5. ``run_notebooks``: ``fm_lab.batch.run_notebooks`` with concurrency 1 (same work as the
   loop plus recording and trace linking) and 2.

Per-item overhead = (path's wall time - the peer's wall time) / items. Throughput = items/s.

Usage::

    .venv/bin/python benchmarks/batch.py               # 1,000 rows, 8 notebooks
    .venv/bin/python benchmarks/batch.py --quick       # 200 rows, 4 notebooks
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import nbformat
import pandas as pd
from nbformat.v4 import new_code_cell, new_notebook

import fm_lab
import fm_lab.batch

FLOW = {
    "id": "bench_sweep",
    "inputs": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
    "nodes": {
        "prompt": {"type": "template", "config": {"template": "value {{ inputs.x * 3 }}"}},
        "ask": {"type": "llm", "config": {"model": "offline/echo",
                                          "prompt": "{{ nodes.prompt.output }}"}},
        "answer": {"type": "template", "config": {"template": "got {{ nodes.ask.output }}"}},
    },
    "edges": ["prompt -> ask", "ask -> answer"],
}


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _report(rows, name, seconds, items, peer=None):
    overhead = "" if peer is None else f"{(seconds - peer) / items * 1000:+9.2f}"
    rows.append((name, items, seconds, items / seconds, seconds / items * 1000, overhead))


def sweep(n: int, work: Path, rows: list) -> None:
    frame = pd.DataFrame({"x": range(n)})
    fm_lab.run(FLOW, {"x": -1}, store=fm_lab.Store(":memory:"))  # imports litellm: untimed

    plain = fm_lab.Store(work / "plain.duckdb", durability="process")
    loop_s, _ = _timed(lambda: [fm_lab.run(FLOW, {"x": x}, store=plain) for x in range(n)])
    _report(rows, "workflow: plain fm_lab.run loop", loop_s, n)

    for concurrency in (1, 16):  # 1: the bookkeeping's cost against the loop; 16: the gain
        local = fm_lab.Store(work / f"local{concurrency}.duckdb", durability="process")
        local_s, out = _timed(lambda s=local, c=concurrency: fm_lab.batch.map(
            FLOW, frame, concurrency=c, store=s, batch_id="bench"))
        assert (out["status"] == "succeeded").all()
        _report(rows, f"workflow: batch.map local ({concurrency})", local_s, n, loop_s)

    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=4, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("litellm"))  # warm the workers as a long-lived cluster
        up_s = time.perf_counter() - start
        dask = fm_lab.Store(work / "dask.duckdb", durability="process")
        dask_s, out = _timed(lambda: fm_lab.batch.map(FLOW, frame, executor=client,
                                                      store=dask, batch_id="bench"))
    assert (out["status"] == "succeeded").all()
    _report(rows, "workflow: batch.map dask (2 workers)", dask_s, n, loop_s)
    calls = fm_lab.usage("model", store=dask)["calls"].sum()
    assert calls == n, calls
    print(f"dask cluster start-up (2 worker processes, litellm imported): {up_s:.2f} s")
    print(f"dask shards: {len(list((dask.shard_dir / 'bench' / 'items').iterdir()))} items, "
          f"usage() over shards: {calls} calls")


def _notebook(path: Path) -> Path:
    params = new_code_cell("x = 0")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[
        new_code_cell("import fm_lab"), params,
        new_code_cell("run = fm_lab.run({'id': 'nb', 'nodes': {'t': {'type': 'template', "
                      "'config': {'template': 'x={{ inputs.x }}'}}}}, {'x': x})"),
        new_code_cell("total = sum(i * x for i in range(1000))"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    nbformat.write(nb, path)
    return path


def notebooks(k: int, work: Path, rows: list) -> None:
    import papermill

    logging.getLogger("papermill").setLevel(logging.ERROR)
    source = _notebook(work / "item.ipynb")
    os.environ["FM_LAB_STORE"] = str(work / "papermill.duckdb")  # the kernels' runs
    try:
        pm_s, _ = _timed(lambda: [papermill.execute_notebook(
            str(source), str(work / f"pm-{i}.ipynb"), parameters={"x": i},
            progress_bar=False, kernel_name="python3") for i in range(k)])
    finally:
        del os.environ["FM_LAB_STORE"]
    _report(rows, "notebook: papermill loop", pm_s, k)
    for concurrency in (1, 2):
        store = fm_lab.Store(work / f"nb{concurrency}.duckdb")
        seconds, out = _timed(lambda s=store, c=concurrency: fm_lab.batch.run_notebooks(
            source, [{"x": i} for i in range(k)], concurrency=c, store=s,
            output_dir=work / f"nb{c}"))
        assert (out["status"] == "succeeded").all(), out["error"].tolist()
        _report(rows, f"notebook: batch.run_notebooks ({concurrency})", seconds, k, pm_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--notebooks", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="200 rows, 4 notebooks")
    args = parser.parse_args()
    n, k = (200, 4) if args.quick else (args.rows, args.notebooks)
    work = Path(tempfile.mkdtemp(prefix="fm_lab_batch_bench_"))
    rows: list = []
    try:
        sweep(n, work, rows)
        notebooks(k, work, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = pd.DataFrame(rows, columns=["path", "items", "wall_s", "items_per_s",
                                        "ms_per_item", "overhead_ms_per_item_vs_peer"])
    print(f"\ncores: {os.cpu_count()}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))


if __name__ == "__main__":
    main()
