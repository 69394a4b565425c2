"""The Dask executor of :func:`fm_lab.batch.map`: items run on workers (see
:mod:`fm_lab.batch.worker`), results come back here and are recorded by this process."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.batch.records import Item

if TYPE_CHECKING:
    from fm_lab.batch.sweep import ItemCallback, ItemWriter, OnError
    from fm_lab.security.policy import Policy
    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import SqlStore

TASK_RETRIES = 2  # an exception in the item's task (not its workflow) is retried this often


def load_distributed() -> Any:
    """The ``distributed`` module (a clear error when dask is not installed)."""
    try:
        import distributed
    except ImportError:
        raise ImportError("executor='dask' needs dask.distributed: pip install 'fm_lab[dask]'"
                          ) from None
    return distributed


@contextlib.contextmanager
def dask_client(executor: Any, env: dict[str, str] | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``executor``: the client itself, a scheduler address, or
    ``"dask"`` for a LocalCluster started (and closed) here, whose worker processes get
    ``env`` (the store's password: never in task arguments)."""
    dist = load_distributed()
    if isinstance(executor, dist.Client):
        yield executor
        return
    if not isinstance(executor, str):
        raise TypeError(f"executor must be 'local', 'dask', a scheduler address or a "
                        f"distributed.Client, not {type(executor).__name__}")
    if executor == "dask":
        # ":0": any free port. None still serves the scheduler's HTTP routes on 8787, so two
        # batches (or two test workers) at once failed with "Port 8787 is already in use"
        with dist.LocalCluster(processes=True, dashboard_address=":0",
                               **({"env": env} if env else {})) as cluster, \
                dist.Client(cluster) as client:
            yield client
        return
    if "://" not in executor and ":" not in executor:
        raise ValueError(f"unknown executor {executor!r}: use 'local', 'dask' or a scheduler "
                         "address such as 'tcp://127.0.0.1:8786'")
    with dist.Client(executor) as client:
        yield client


def run_on_dask(wf: Workflow, items: list[Item], store: SqlStore, folder: Path, executor: Any,
                concurrency: int, on_error: OnError, on_item: ItemCallback | None,
                policy: Policy) -> None:
    """Run ``items`` on Dask workers (at most ``concurrency`` submitted at a time) and record
    each result as it arrives. Workers of a file store write Parquet shards into ``folder``;
    workers of a server store (PostgreSQL) store their runs in it directly."""
    from fm_lab.batch.shards import read_result, stored_result
    from fm_lab.batch.sweep import ItemWriter
    from fm_lab.store.base import server_url

    url = server_url(store)
    with store.hold(), ItemWriter(store, wf.id, on_error, on_item) as writer:
        pending = []
        for item in items:  # finished on a worker before this process died: its rows say so
            done = (stored_result(store, item.run_id) if url is not None
                    else read_result(folder, item.run_id))
            if done is not None and done["status"] == "succeeded":
                _apply(item, done)
                writer.add(item, item.run_id)
            else:
                pending.append(item)
        if pending:
            _submit_all(wf, pending, folder, executor, concurrency, writer, url, policy)


@contextlib.contextmanager
def worker_access(store_url: str | None) -> Iterator[tuple[str | None, dict[str, str]]]:
    """The server store's URL without its password (what tasks carry) and the environment
    that gives worker processes fm_lab starts the password; workers in this process (a
    threaded cluster) open the full URL meanwhile. Other workers find the password where
    libpq looks (``PGPASSWORD``, ``PGPASSFILE``, ``~/.pgpass``)."""
    if store_url is None:
        yield None, {}
        return
    from fm_lab.batch.worker import lend_url
    from fm_lab.store.pg_password import password_env, split_password

    public, password = split_password(store_url)
    with lend_url(public, store_url):
        yield public, password_env(password)


def _submit_all(wf: Workflow, items: list[Item], folder: Path, executor: Any, concurrency: int,
                writer: ItemWriter, store_url: str | None, policy: Policy) -> None:
    from fm_lab.batch.worker import run_item

    folder.mkdir(parents=True, exist_ok=True)
    spec = wf.to_dict()
    with worker_access(store_url) as (store_url, env), \
            dask_client(executor, env) as client:  # workers never open a DuckDB file
        queue = iter(items)
        by_future: dict[Any, Item] = {}

        def submit(item: Item) -> Any:
            item.attempts += 1
            future = client.submit(run_item, spec, item.parameters, item.run_id, item.trace_id,
                                   item.span_id, str(folder), store_url, policy=policy,
                                   pure=False,
                                   retries=TASK_RETRIES,
                                   key=f"fm_lab-{item.run_id}-{item.attempts}")
            by_future[future] = item
            return future

        running = load_distributed().as_completed([submit(i) for i in itertools.islice(queue,
                                                                                concurrency)])
        for future in running:
            item = by_future.pop(future)
            result = future.result()
            _apply(item, result)
            writer.add(item, result["run_id"])
            following = next(queue, None)
            if following is not None:
                running.add(submit(following))


def _apply(item: Item, result: dict[str, Any]) -> None:
    item.status = result["status"]
    item.outputs = result["outputs"]
    item.error = result["error"]
    item.started = result["started"]
    item.ended = result["ended"]
