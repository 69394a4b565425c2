"""What runs on a Dask worker: one item on a worker-local memory store, exported as a shard.
Workers never open the batch's DuckDB file."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.batch.shards import export_run, read_result

if TYPE_CHECKING:
    from fm_lab.store.duckdb_store import Store

_LOCAL: Store | None = None
_LOCAL_LOCK = threading.Lock()


def local_store() -> Store:
    """This worker process's scratch store (in memory; rows leave it as shards)."""
    global _LOCAL
    with _LOCAL_LOCK:
        if _LOCAL is None:
            from fm_lab.store.duckdb_store import Store

            _LOCAL = Store(":memory:")
        return _LOCAL


def run_item(spec: dict[str, Any], inputs: dict[str, Any], run_id: str, trace_id: str,
             span_id: str, batch_dir: str) -> dict[str, Any]:
    """Run one item (unless its shard already holds a finished run: a retry after the worker
    died between writing the shard and reporting) and return its result."""
    from fm_lab.engine.api import arun
    from fm_lab.sync import run_sync
    from fm_lab.tracing.spans import link_trace

    folder = Path(batch_dir)
    done = read_result(folder, run_id)
    if done is not None and done["status"] == "succeeded":
        return done
    store = local_store()
    started = time.time()
    try:
        with link_trace(trace_id, span_id):
            result = run_sync(arun(spec, inputs, run_id=run_id, store=store))
    except Exception as exc:  # invalid inputs: nothing was stored
        return {"run_id": None, "status": "failed", "outputs": None, "started": started,
                "ended": time.time(),
                "error": {"kind": "validation", "type": type(exc).__name__, "message": str(exc)}}
    export_run(store, run_id, folder)
    return {"run_id": run_id, "status": result.status, "outputs": result.outputs,
            "error": result.error, "started": started, "ended": time.time()}
