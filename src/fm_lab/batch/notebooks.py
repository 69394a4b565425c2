"""``run_notebook`` / ``run_notebooks``: papermill-style parameterised notebooks, each item
recorded in the store, runs started inside linked to the item's trace; resumable."""

from __future__ import annotations

import concurrent.futures
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.batch.liveness import hold, release
from fm_lab.batch.nbexec import execute_notebook, read_notebook
from fm_lab.batch.params import as_items
from fm_lab.batch.records import (
    DONE,
    Item,
    ensure_batch,
    load_items,
    new_batch_id,
    save_item,
    status,
)
from fm_lab.batch.shards import batch_folder
from fm_lab.store.ids import id_path

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.batch.sweep import ItemCallback
    from fm_lab.store.base import RunStore, SqlStore

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def run_notebook(path: str | Path, parameters: Mapping[str, Any] | None = None,
                 output: str | Path | None = None, *, batch_id: str | None = None,
                 store: RunStore | None = None, kernel_name: str | None = None,
                 timeout: float | None = None, cwd: str | Path | None = None) -> Item:
    """Execute the notebook at ``path`` as papermill would (parameters injected and the kernel
    in ``cwd``, default: this process's working directory), write the executed copy to
    ``output`` as it runs and record it as a one-item batch. Returns the item: ``status``,
    ``error`` (with the failing ``cell`` and ``traceback``), ``error_cell``, ``duration_ms``,
    ``output_path``, ``trace_id`` (runs started inside the notebook are in that trace)."""
    items = _run(path, [("0", dict(parameters or {}))], batch_id=batch_id, store=store,
                 concurrency=1, kernel_name=kernel_name, timeout=timeout, cwd=cwd,
                 outputs={"0": output} if output is not None else None)
    return items[0]


def run_notebooks(path: str | Path, items: Any, *, concurrency: int = 2,
                  batch_id: str | None = None, output_dir: str | Path | None = None,
                  store: RunStore | None = None, kernel_name: str | None = None,
                  timeout: float | None = None, cwd: str | Path | None = None,
                  on_item: ItemCallback | None = None, executor: Any = "local"
                  ) -> pd.DataFrame:
    """Run the notebook once per item of ``items`` (a grid dict, a DataFrame, records or a
    .yaml/.json/.csv file), ``concurrency`` kernels at a time, and return :func:`status` of
    the batch. Re-running the same ``batch_id`` skips succeeded items and retries the rest.

    ``executor="dask"`` (or a scheduler address or ``distributed.Client``) runs the kernels on
    Dask workers (paths must be visible to them); the runs a kernel starts are written to a
    scratch file and come back as the item's Parquet shard."""
    batch_id = batch_id or new_batch_id()
    _run(path, as_items(items), batch_id=batch_id, store=store, concurrency=concurrency,
         kernel_name=kernel_name, timeout=timeout, cwd=cwd, output_dir=output_dir,
         on_item=on_item, executor=executor)
    from fm_lab.store.default import default_store

    return status(batch_id, store=store or default_store())


def _run(path: str | Path, wanted: list[tuple[str, dict[str, Any]]], *, batch_id: str | None,
         store: RunStore | None, concurrency: int, kernel_name: str | None,
         timeout: float | None, cwd: str | Path | None,
         outputs: Mapping[str, str | Path] | None = None,
         output_dir: str | Path | None = None,
         on_item: ItemCallback | None = None, executor: Any = "local") -> list[Item]:
    from fm_lab.store.base import server_url, sql_store
    from fm_lab.store.default import default_store

    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    source = Path(path)
    read_notebook(source)  # a missing or broken notebook fails before anything is recorded
    store = sql_store(store or default_store(), "a notebook batch")
    batch_id = batch_id or new_batch_id()
    local = isinstance(executor, str) and executor == "local"
    shards = None if local else batch_folder(store, batch_id)
    folder = Path(output_dir) if output_dir else _default_dir(store, batch_id)
    target_path = os.path.abspath(source)
    ensure_batch(store, batch_id, "notebook", target_path, "local" if local else "dask", folder)
    items = load_items(store, batch_id, wanted)
    todo = [i for i in items if i.status != DONE]

    def start(item: Item) -> Path:
        target = Path((outputs or {}).get(item.key) or folder / _output_name(source, item.key))
        begin_item(store, item, target, target_path)
        return target

    def done(item: Item, result: dict[str, Any]) -> None:
        end_item(store, item, result, target_path)
        if on_item is not None:
            on_item(item)

    # the kernel runs in the caller's working directory, as papermill's (workers get it too)
    workdir = str(Path(cwd).resolve()) if cwd is not None else os.getcwd()
    options: dict[str, Any] = {"kernel_name": kernel_name, "timeout": timeout, "cwd": workdir}

    def one(item: Item) -> None:
        target = start(item)
        try:
            result = execute_notebook(source, target, item.parameters,
                                      env=kernel_env(store, item),
                                      extra_metadata={"batch_id": batch_id, "item": item.key},
                                      **options)
        except BaseException:
            release(store, item.batch_id)  # left running: status reads it as interrupted
            raise
        done(item, result)

    if shards is None:
        with concurrent.futures.ThreadPoolExecutor(concurrency, "fm_lab-nb") as pool:
            list(pool.map(one, todo))
    elif todo:
        _on_dask(executor, source, todo, shards, options, start, done, server_url(store))
    return items


def open_item(notebook: str, parameters: Mapping[str, Any], *, batch_id: str | None,
              store: RunStore | None) -> tuple[SqlStore, Item]:
    """The store and the one item of a single-notebook batch executed elsewhere (by
    papermill, through :mod:`fm_lab.batch.papermill_engine`); ``notebook``: its path as
    recorded."""
    from fm_lab.store.base import sql_store
    from fm_lab.store.default import default_store

    sql = sql_store(store or default_store(), "a notebook batch")
    batch_id = batch_id or new_batch_id()
    ensure_batch(sql, batch_id, "notebook", notebook, "local", _default_dir(sql, batch_id))
    return sql, load_items(sql, batch_id, [("0", dict(parameters))])[0]


def kernel_env(store: RunStore, item: Item) -> dict[str, str]:
    """What a notebook kernel needs to record its runs in ``item``'s trace in ``store``."""
    from fm_lab.store.base import server_url
    from fm_lab.store.pg_password import password_env, split_password

    env = {"FM_LAB_TRACEPARENT": item.traceparent}
    if not store.memory:  # the kernel's runs go to this store (a server's password in the
        url = server_url(store)  # kernel's PGPASSWORD, not in its URL)
        public, password = split_password(url) if url is not None else (None, None)
        env["FM_LAB_STORE"] = public or store.path
        env.update(password_env(password))
    return env


def begin_item(store: SqlStore, item: Item, output: str | Path, notebook: str) -> None:
    """Record ``item`` as running in this process (another attempt, writing ``output``)."""
    item.attempts += 1
    item.started, item.ended, item.status = time.time(), None, "running"
    item.output_path = os.path.abspath(output)
    hold(store, item.batch_id)  # before the row says running: never read as interrupted
    save_item(store, item, "notebook", notebook)


def end_item(store: SqlStore, item: Item, result: Mapping[str, Any], notebook: str) -> None:
    """Record how ``item`` ended (``result`` of an execution) and let it go."""
    item.status, item.error = result["status"], result["error"]
    item.error_cell = result["error_cell"]
    item.started, item.ended = result["started"], result["ended"]
    try:
        save_item(store, item, "notebook", notebook)
    finally:
        release(store, item.batch_id)


def _on_dask(executor: Any, source: Path, todo: list[Item], folder: Path,
             options: dict[str, Any], start: Callable[[Item], Path],
             done: Callable[[Item, dict[str, Any]], None], store_url: str | None) -> None:
    from fm_lab.batch.dask_exec import TASK_RETRIES, dask_client, load_distributed, worker_access
    from fm_lab.batch.worker import run_notebook_item

    with worker_access(store_url) as (store_url, env), \
            dask_client(executor, env) as client:
        futures = {}
        for item in todo:
            target = start(item)
            extra = {"batch_id": item.batch_id, "item": item.key}
            futures[client.submit(
                run_notebook_item, str(source.resolve()), str(target.resolve()),
                item.parameters, item.traceparent, str(folder), item.run_id,
                {**options, "extra_metadata": extra}, store_url, pure=False,
                retries=TASK_RETRIES,
                key=f"fm_lab-nb-{item.run_id}-{item.attempts}")] = item
        for future in load_distributed().as_completed(futures):
            done(futures[future], future.result())


def _default_dir(store: SqlStore, batch_id: str) -> Path:
    from fm_lab.store.base import shard_dir
    from fm_lab.store.default import home

    base = shard_dir(store) or home() / "batches"
    return id_path(base, batch_id, what="batch id") / "notebooks"


def _output_name(source: Path, key: str) -> str:
    return f"{source.stem}-{_UNSAFE.sub('_', key)}.ipynb"
