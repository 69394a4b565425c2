"""The user-facing entry points: connect, run, resume, runs, validate."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fm_lab.engine.plan import Plan
from fm_lab.engine.run import Run
from fm_lab.engine.runner import Runner
from fm_lab.spec.models import Workflow
from fm_lab.store.duckdb_store import Store
from fm_lab.store.errors import StoreError
from fm_lab.store.journal import Durability

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.nodes.registry import NodeRegistry

T = TypeVar("T")
_STORE: Store | None = None
DEFAULT_FILE = "fm_lab.duckdb"


def home() -> Path:
    """``$FM_LAB_HOME`` or ``./.fm_lab``."""
    return Path(os.environ.get("FM_LAB_HOME", ".fm_lab")).expanduser()


def connect(
    path: str | Path | None = None, *, read_only: bool = False, durability: Durability = "fsync"
) -> Store:
    """Open (and make default) the store at ``path`` (default ``$FM_LAB_HOME/fm_lab.duckdb``).

    ``":memory:"`` gives a throw-away store for tests. ``durability``: ``fsync`` (a committed
    node survives a power cut), ``process`` (survives a killed process or kernel).

    >>> store = connect(":memory:")
    >>> store.memory
    True
    """
    global _STORE
    target = path if path is not None else home() / DEFAULT_FILE
    _STORE = Store(target, read_only=read_only, durability=durability)
    return _STORE


def default_store() -> Store:
    """The store set by :func:`connect`, opening the default one on first use."""
    return _STORE if _STORE is not None else connect()


def new_run_id() -> str:
    """A sortable, unique run id."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


def load_workflow(workflow: Workflow | str | Path | dict[str, Any]) -> Workflow:
    """Accept a Workflow, a path to YAML/JSON, or a dict."""
    if isinstance(workflow, Workflow):
        return workflow
    if isinstance(workflow, dict):
        return Workflow.from_dict(workflow)
    return Workflow.from_file(workflow)


def validate(
    workflow: Workflow | str | Path | dict[str, Any], registry: NodeRegistry | None = None
) -> Workflow:
    """Load and validate; raises :class:`WorkflowValidationError` listing every problem."""
    return load_workflow(workflow).validate(registry)


async def arun(
    workflow: Workflow | str | Path | dict[str, Any],
    inputs: dict[str, Any] | None = None,
    *,
    run_id: str | None = None,
    store: Store | None = None,
    request_context: dict[str, Any] | None = None,
    registry: NodeRegistry | None = None,
    parent_run_id: str | None = None,
) -> Run:
    """Run a workflow to its end (async). Invalid workflows or inputs raise before anything
    is stored."""
    from fm_lab.nodes.registry import default_registry

    wf = load_workflow(workflow)
    plan = Plan(wf, registry or default_registry())
    prepared = plan.prepare_inputs(dict(inputs or {}))
    store = store or default_store()
    run_id = run_id or new_run_id()
    runner = Runner(
        plan,
        store,
        run_id,
        prepared,
        request_context,
        start=store.start_record(run_id, wf, prepared, parent_run_id),
    )
    await runner.execute()
    return _run_from(runner)


async def aresume(
    run_id: str,
    *,
    store: Store | None = None,
    request_context: dict[str, Any] | None = None,
    registry: NodeRegistry | None = None,
) -> Run:
    """Continue a run that stopped (crash, kill, failure): committed nodes are not re-run."""
    from fm_lab.nodes.registry import default_registry

    store = store or default_store()
    store.recover_journals(run_id)
    snapshot = store.load_run(run_id)
    if snapshot.status == "succeeded":
        return Run.load(run_id, store)
    plan = Plan(snapshot.workflow, registry or default_registry())
    journal = store.open_journal(run_id)  # RunLockedError while another process runs it
    try:
        store.claim_run(run_id)
    except BaseException:
        if journal is not None:
            journal.close()
        raise
    runner = Runner(
        plan, store, run_id, snapshot.inputs, request_context, snapshot=snapshot, journal=journal
    )
    await runner.execute()
    return _run_from(runner)


def _run_from(runner: Runner) -> Run:
    return Run(
        runner.run_id,
        runner.store,
        workflow=runner.plan.workflow,
        status=runner.run_status,
        outputs=runner.outputs,
        error=runner.error,
        nodes=runner.results,
        state=runner.state,
    )


def run(
    workflow: Workflow | str | Path | dict[str, Any],
    inputs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Run:
    """Run a workflow and wait for it; works in scripts and inside Jupyter's running loop.

    Takes the same arguments as :func:`arun`.
    """
    return _sync(arun(workflow, inputs, **kwargs))


def resume(run_id: str, **kwargs: Any) -> Run:
    """Synchronous :func:`aresume`."""
    return _sync(aresume(run_id, **kwargs))


def get_run(run_id: str, store: Store | None = None) -> Run:
    """A stored run by id."""
    return Run.load(run_id, store or default_store())


def runs(
    limit: int | None = 100, status: str | None = None, store: Store | None = None
) -> pd.DataFrame:
    """Recent runs as a DataFrame (newest first)."""
    return (store or default_store()).runs(limit=limit, status=status)


def _sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:
        return asyncio.run(coro)
    # A loop is running (Jupyter): run ours on a worker thread and wait for it.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fm_lab-run") as pool:
        return pool.submit(asyncio.run, coro).result()


__all__ = [
    "StoreError",
    "aresume",
    "arun",
    "connect",
    "default_store",
    "get_run",
    "home",
    "load_workflow",
    "new_run_id",
    "resume",
    "run",
    "runs",
    "validate",
]
