"""What runs on a Dask worker: one item on a worker-local memory store, exported as a shard.
Workers never open the batch's DuckDB file."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fm_lab.batch.shards import export_rows, export_run, read_result
from fm_lab.store.ids import id_path

if TYPE_CHECKING:
    from fm_lab.engine.run import Run
    from fm_lab.store.base import SqlStore

T = TypeVar("T")
_LOCAL: SqlStore | None = None
_LOOP: asyncio.AbstractEventLoop | None = None
_LOCAL_LOCK = threading.Lock()


def local_store() -> SqlStore:
    """This worker process's scratch store (in memory; rows leave it as shards)."""
    global _LOCAL
    with _LOCAL_LOCK:
        if _LOCAL is None:
            from fm_lab.store.duckdb_store import Store

            _LOCAL = Store(":memory:")
        return _LOCAL


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on this process's one background loop (worker threads share it, and so
    does litellm's logging, which is bound to the loop it first saw)."""
    global _LOOP
    with _LOCAL_LOCK:
        if _LOOP is None:
            _LOOP = asyncio.new_event_loop()
            threading.Thread(target=_LOOP.run_forever, name="fm_lab-batch-loop",
                             daemon=True).start()
        loop = _LOOP
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def run_item(spec: dict[str, Any], inputs: dict[str, Any], run_id: str, trace_id: str,
             span_id: str, batch_dir: str) -> dict[str, Any]:
    """Run one item (unless its shard already holds a finished run: a retry after the worker
    died between writing the shard and reporting) and return its result."""
    folder = Path(batch_dir)
    done = read_result(folder, run_id)
    if done is not None and done["status"] == "succeeded":
        return done
    store = local_store()
    started = time.time()
    try:
        result = _run(_linked(spec, inputs, run_id, trace_id, span_id, store))
    except Exception as exc:  # invalid inputs: nothing was stored
        return {"run_id": None, "status": "failed", "outputs": None, "started": started,
                "ended": time.time(),
                "error": {"kind": "validation", "type": type(exc).__name__, "message": str(exc)}}
    export_run(store, run_id, folder)
    return {"run_id": run_id, "status": result.status, "outputs": result.outputs,
            "error": result.error, "started": started, "ended": time.time()}


async def _linked(spec: dict[str, Any], inputs: dict[str, Any], run_id: str, trace_id: str,
                  span_id: str, store: SqlStore) -> Run:
    from fm_lab.engine.api import arun
    from fm_lab.tracing.spans import link_trace

    with link_trace(trace_id, span_id):
        return await arun(spec, inputs, run_id=run_id, store=store)


def run_notebook_item(source: str, output: str, parameters: dict[str, Any], traceparent: str,
                      batch_dir: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Execute one notebook item; the runs its kernel starts go to a scratch DuckDB file that
    becomes the item's shard (``options``: kernel_name, timeout, cwd, extra_metadata)."""
    from fm_lab.batch.nbexec import execute_notebook
    from fm_lab.store.duckdb_store import Store

    folder = Path(batch_dir)
    scratch = id_path(folder / "tmp", name, f"-{uuid.uuid4().hex[:8]}.duckdb")
    scratch.parent.mkdir(parents=True, exist_ok=True)
    env = {"FM_LAB_TRACEPARENT": traceparent, "FM_LAB_STORE": str(scratch)}
    try:
        result = execute_notebook(source, output, parameters, env=env, **options)
        if scratch.exists():
            store = Store(scratch)
            try:
                export_rows(store, name, folder)
            finally:
                store.close()
    finally:
        scratch.unlink(missing_ok=True)
        shutil.rmtree(Path(str(scratch) + ".journal"), ignore_errors=True)
    return result
