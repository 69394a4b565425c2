"""``fm_lab.batch.map``: one workflow run per row of a DataFrame (or per record), locally on
asyncio or on Dask workers; resumable by batch id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fm_lab.batch.params import as_items
from fm_lab.batch.records import (
    DONE,
    Item,
    ensure_batch,
    load_items,
    new_batch_id,
    save_items,
    status,
)
from fm_lab.batch.shards import batch_folder

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.security.policy import Policy
    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore, SqlStore

OnError = Literal["collect", "raise"]
ItemCallback = Callable[[Item], None]


class BatchItemError(RuntimeError):
    """An item failed and the batch ran with ``on_error="raise"``."""

    def __init__(self, item: Item) -> None:
        err = item.error or {}
        super().__init__(f"batch {item.batch_id} item {item.key!r} failed: "
                         f"[{err.get('kind')}] {err.get('message')}")
        self.item = item


def map(
    workflow: Workflow | str | Path | dict[str, Any],
    rows: Any,
    *,
    concurrency: int | None = None,
    executor: Any = "local",
    batch_id: str | None = None,
    on_error: OnError = "collect",
    store: RunStore | None = None,
    on_item: ItemCallback | None = None,
    policy: Policy | str | None = None,
) -> pd.DataFrame:
    """Run ``workflow`` once per row (a DataFrame, records, or a grid dict) and return one row
    per item: its inputs, ``outputs``, ``status``, ``error``, ``duration_ms``, tokens and
    ``cost_usd``, ``run_id``.

    ``executor``: ``"local"`` (asyncio in this process, ``concurrency`` runs at once, default
    8), ``"dask"`` (a new LocalCluster), a scheduler address or a ``distributed.Client``
    (``concurrency`` items submitted at a time, default all). This process keeps the store
    file open while the sweep runs (:meth:`SqlStore.hold`); other processes wait for it.
    Re-running the same ``batch_id`` skips finished items and retries (resumes) the others.
    ``on_error="raise"`` stops at the first failed item (after recording it) with
    :class:`BatchItemError`.

    ``policy``: ``"trusted"`` or ``"restricted"`` for every item, chosen here once (default:
    ``$FM_LAB_POLICY``, else the store's default locally and ``restricted`` on Dask workers,
    which run what others submit); the allow-lists of this process and the store go with it.
    A worker whose own ``FM_LAB_POLICY`` is ``restricted`` never runs an item trusted.
    """
    from fm_lab.engine.api import load_workflow
    from fm_lab.security.policy import resolve_policy
    from fm_lab.store.base import sql_store
    from fm_lab.store.default import default_store

    if on_error not in ("collect", "raise"):
        raise ValueError(f"on_error must be 'collect' or 'raise', not {on_error!r}")
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    wf = load_workflow(workflow)
    store = sql_store(store or default_store(), "a workflow sweep")
    batch_id = batch_id or new_batch_id()
    wanted = as_items(rows)
    local = isinstance(executor, str) and executor == "local"
    chosen = resolve_policy(policy, store=store, worker=not local)
    folder = None if local else batch_folder(store, batch_id)
    ensure_batch(store, batch_id, "workflow", wf.id, "local" if local else "dask", folder)
    items = load_items(store, batch_id, wanted)
    todo = [i for i in items if i.status != DONE]
    if todo and local:
        from fm_lab.sync import run_sync

        run_sync(_run_local(wf, todo, store, concurrency or 8, on_error, on_item, chosen))
    elif todo:
        from fm_lab.batch.dask_exec import run_on_dask

        assert folder is not None
        run_on_dask(wf, todo, store, folder, executor, concurrency or len(todo), on_error,
                    on_item, chosen)
    return result_frame(rows, batch_id, store)


class ItemWriter:
    """Records finished items in groups (one transaction per 100 items or per second, and
    whatever is left when the batch stops), reports each, and raises under
    ``on_error="raise"``. An unrecorded item is not lost: its run is in the store (or its
    shard on disk) and a re-run of the batch picks it up."""

    def __init__(self, store: SqlStore, target: str, on_error: OnError,
                 on_item: ItemCallback | None, every: int = 100, every_s: float = 1.0) -> None:
        self.store, self.target, self.on_error, self.on_item = store, target, on_error, on_item
        self.every, self.every_s = every, every_s
        self.pending: list[tuple[Item, str | None]] = []
        self.last = time.monotonic()

    def __enter__(self) -> ItemWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def add(self, item: Item, run_id: str | None) -> None:
        self.pending.append((item, run_id))
        if self.on_item is not None:
            self.on_item(item)
        if self.on_error == "raise" and item.status != DONE:
            raise BatchItemError(item)
        if len(self.pending) >= self.every or time.monotonic() - self.last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        batch, self.pending = self.pending, []
        save_items(self.store, batch, "workflow", self.target)


async def _run_local(wf: Workflow, items: list[Item], store: SqlStore, concurrency: int,
                     on_error: OnError, on_item: ItemCallback | None, policy: Policy) -> None:
    known = _known_runs(store, [i.run_id for i in items])
    gate = asyncio.Semaphore(concurrency)
    failed: list[BaseException] = []

    async def one(item: Item, writer: ItemWriter) -> None:
        async with gate:
            if failed:  # stopping: start nothing new, let running items finish
                return
            run_id = await _attempt(wf, item, store, item.run_id in known, policy)
            try:
                writer.add(item, run_id)
            except BaseException as exc:
                failed.append(exc)

    # one connection for every run of the sweep (not several opens per run), held by the
    # thread of this loop: in Jupyter that is run_sync's worker thread, not the caller's
    with store.hold(), ItemWriter(store, wf.id, on_error, on_item) as writer:
        await asyncio.gather(*(one(item, writer) for item in items))
    if failed:
        raise failed[0]


async def _attempt(wf: Workflow, item: Item, store: SqlStore, exists: bool,
                   policy: Policy) -> str | None:
    """Run (or, when its run exists, resume) the item's run; fill in the item's result."""
    from fm_lab.engine.api import aresume, arun
    from fm_lab.tracing.spans import link_trace

    item.attempts += 1
    item.started = time.time()
    run_id: str | None = item.run_id
    try:
        with link_trace(item.trace_id, item.span_id):
            if exists:
                run = await aresume(item.run_id, store=store, policy=policy)
            else:
                run = await arun(wf, item.parameters, run_id=item.run_id, store=store,
                                 policy=policy)
        item.status, item.outputs, item.error = run.status, run.outputs, run.error
    except Exception as exc:  # invalid inputs (nothing stored) or a run that cannot resume
        run_id = item.run_id if exists else None
        item.status, item.outputs = "failed", None
        item.error = {"kind": "validation", "type": type(exc).__name__, "message": str(exc)}
    item.ended = time.time()
    return run_id


def _known_runs(store: SqlStore, run_ids: list[str]) -> set[str]:
    """Which of ``run_ids`` exist already (a batch interrupted after its runs started)."""
    if not run_ids:
        return set()
    store.recover_journals()
    with store.connection() as con:
        con.register("_fm_ids", _ids_frame(run_ids))
        try:
            rows = con.execute("select run_id from runs where run_id in "
                               "(select run_id from _fm_ids)").fetchall()
        finally:
            con.unregister("_fm_ids")
    return {r[0] for r in rows}


def _ids_frame(run_ids: list[str]) -> Any:
    import pyarrow as pa

    return pa.table({"run_id": pa.array(run_ids, pa.string())})


def result_frame(rows: Any, batch_id: str, store: SqlStore) -> pd.DataFrame:
    """The batch's items as returned by :func:`map`: input columns first, then results (the
    index of a DataFrame given as ``rows`` is kept)."""
    import pandas as pd

    found = status(batch_id, store=store)
    inputs = pd.DataFrame(list(found["parameters"]), index=found.index)
    results = found[["outputs", "status", "error", "duration_ms", "input_tokens",
                     "output_tokens", "cost_usd", "attempts", "run_id", "trace_id"]]
    inputs.columns = [f"input.{c}" if c in results.columns else c for c in inputs.columns]
    frame = pd.concat([inputs, results], axis=1)
    if isinstance(rows, pd.DataFrame) and len(rows) == len(frame):
        frame.index = rows.index
    frame.attrs["batch_id"] = batch_id
    return frame
