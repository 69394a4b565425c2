"""What runs on a Dask worker: one item on a worker-local memory store, exported as a shard
(workers never open the batch's DuckDB file), or, for a server store (PostgreSQL), on that
store itself: every worker writes its runs there directly."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from fm_lab.batch.shards import export_rows, export_run, read_result, stored_result
from fm_lab.store.ids import id_path

if TYPE_CHECKING:
    from fm_lab.engine.run import Run
    from fm_lab.security.policy import Policy
    from fm_lab.store.base import RunStore, SqlStore

T = TypeVar("T")
_LOCAL: SqlStore | None = None
_SERVERS: dict[str, RunStore] = {}  # server stores this worker opened, by URL
_LENT: dict[str, str] = {}  # a batch's URL without its password -> with it, in its process
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


def server_store(url: str) -> RunStore:
    """This worker process's handle on the server store at ``url`` (opened once; the URL
    carries no password: libpq finds it in ``PGPASSWORD``, ``PGPASSFILE`` or ``~/.pgpass``,
    and a worker in the batch's own process opens the batch's full URL)."""
    with _LOCAL_LOCK:
        url = _LENT.get(url, url)
        if url not in _SERVERS:
            from fm_lab.store.urls import open_store

            _SERVERS[url] = open_store(url)
        return _SERVERS[url]


@contextlib.contextmanager
def lend_url(public: str, full: str) -> Iterator[None]:
    """Workers in this process (threads of a local cluster) open ``full`` when a task names
    ``public`` in the block: the password stays in this process, out of task arguments."""
    with _LOCAL_LOCK:
        _LENT[public] = full
    try:
        yield
    finally:
        with _LOCAL_LOCK:
            _LENT.pop(public, None)


def run_item(spec: dict[str, Any], inputs: dict[str, Any], run_id: str, trace_id: str,
             span_id: str, batch_dir: str, store_url: str | None = None,
             policy: Policy | None = None) -> dict[str, Any]:
    """Run one item (unless it already finished: a retry after the worker died between
    storing the run and reporting) and return its result. ``store_url``: the batch's server
    store, written directly; else the run goes to the item's shard in ``batch_dir``.
    ``policy``: the submitter's, capped by this worker's own ``FM_LAB_POLICY``
    (:func:`~fm_lab.security.policy.capped`); None: ``restricted``."""
    from fm_lab.security.policy import capped

    chosen = capped(policy)
    folder = Path(batch_dir)
    shared = server_store(store_url) if store_url is not None else None
    done = (stored_result(shared, run_id) if shared is not None
            else read_result(folder, run_id))
    if done is not None and done["status"] == "succeeded":
        return done
    if shared is not None:
        return _run_item(spec, inputs, run_id, trace_id, span_id, shared, None, chosen)
    return _run_item(spec, inputs, run_id, trace_id, span_id, local_store(), folder, chosen)


def _run_item(spec: dict[str, Any], inputs: dict[str, Any], run_id: str, trace_id: str,
              span_id: str, store: RunStore, folder: Path | None,
              policy: Policy) -> dict[str, Any]:
    """Run the item on ``store``; export it as a shard into ``folder`` if one is given."""
    started = time.time()
    try:
        result = _run(_linked(spec, inputs, run_id, trace_id, span_id, store, policy))
    except Exception as exc:  # invalid inputs: nothing was stored
        return {"run_id": None, "status": "failed", "outputs": None, "started": started,
                "ended": time.time(),
                "error": {"kind": "validation", "type": type(exc).__name__, "message": str(exc)}}
    if folder is not None:
        export_run(cast("SqlStore", store), run_id, folder)
    return {"run_id": run_id, "status": result.status, "outputs": result.outputs,
            "error": result.error, "started": started, "ended": time.time()}


async def _linked(spec: dict[str, Any], inputs: dict[str, Any], run_id: str, trace_id: str,
                  span_id: str, store: RunStore, policy: Policy) -> Run:
    """Run the item inside its batch trace; on a server store, an item whose worker died
    mid-run (its run stored, no process holding it) is resumed from its checkpoints instead."""
    from fm_lab.engine.api import aresume, arun, get_run
    from fm_lab.store.errors import RunNotFoundError
    from fm_lab.tracing.spans import link_trace

    with link_trace(trace_id, span_id):
        if store.memory:  # a worker-local scratch store starts empty
            return await arun(spec, inputs, run_id=run_id, store=store, policy=policy)
        try:
            status = store.run_status(run_id)
        except RunNotFoundError:
            return await arun(spec, inputs, run_id=run_id, store=store, policy=policy)
        if status in ("running", "failed") and not store.run_is_live(run_id):
            return await aresume(run_id, store=store, policy=policy)
        return get_run(run_id, store=store)


def run_notebook_item(source: str, output: str, parameters: dict[str, Any], traceparent: str,
                      batch_dir: str, name: str, options: dict[str, Any],
                      store_url: str | None = None) -> dict[str, Any]:
    """Execute one notebook item; the runs its kernel starts go to the batch's server store
    (``store_url``) or to a scratch DuckDB file that becomes the item's shard (``options``:
    kernel_name, timeout, cwd, extra_metadata)."""
    from fm_lab.batch.nbexec import execute_notebook
    from fm_lab.store.duckdb_store import Store

    if store_url is not None:
        env = {"FM_LAB_TRACEPARENT": traceparent, "FM_LAB_STORE": store_url}
        return execute_notebook(source, output, parameters, env=env, **options)
    folder = Path(batch_dir)
    scratch = id_path(folder / "tmp", name, f"-{uuid.uuid4().hex[:8]}.duckdb")
    scratch.parent.mkdir(parents=True, exist_ok=True)
    journals = Path(str(scratch) + ".journal")
    env = {"FM_LAB_TRACEPARENT": traceparent, "FM_LAB_STORE": str(scratch)}
    try:
        result = execute_notebook(source, output, parameters, env=env, **options)
        # the kernel's last runs may be in their journals only (stored a moment after they
        # ended): opening the store takes them in, as any ended process's journals
        if scratch.exists() or any(journals.glob("*.journal")):
            store = Store(scratch)
            try:
                export_rows(store, name, folder)
            finally:
                store.close()
    finally:
        scratch.unlink(missing_ok=True)
        shutil.rmtree(journals, ignore_errors=True)
    return result
