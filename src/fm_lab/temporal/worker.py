"""Temporal workers for fm_lab runs: ``fm-lab worker --temporal ADDRESS --task-queue Q``.

A worker executes the run workflow (:mod:`fm_lab.temporal.workflow`) and every node activity
(:mod:`fm_lab.temporal.activities`): any registered node type, and the functions workflows
name by import path (importable on the worker, like a local run's). Many workers on many
machines share a queue; a node whose worker dies runs again on another once its heartbeat
timeout passes. The worker's ``--policy`` (else ``$FM_LAB_POLICY``, else ``restricted``) is
the most any run may do on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fm_lab.temporal.ids import Target

STICKY_ENV = "FM_LAB_TEMPORAL_STICKY_S"  # how soon another worker takes a dead one's runs

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.worker import Worker


def make_worker(client: Client, task_queue: str, *, max_concurrent_activities: int = 64,
                sticky_timeout_s: float | None = None) -> Worker:
    """A worker of ``task_queue`` (the workflow sandboxed, fm_lab passed through it)."""
    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from fm_lab.temporal.activities import ACTIVITIES
    from fm_lab.temporal.workflow import FmLabRun

    options: dict[str, Any] = {}
    if sticky_timeout_s is not None:
        options["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=sticky_timeout_s)
    # fm_lab's modules (and the model client they load) are the same inside the sandbox: the
    # workflow code uses none of them for its decisions, and re-importing them per run costs
    runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default
                                     .with_passthrough_modules("fm_lab", "litellm"))
    return Worker(client, task_queue=task_queue, workflows=[FmLabRun],
                  activities=list(ACTIVITIES), workflow_runner=runner,
                  max_concurrent_activities=max_concurrent_activities,
                  max_concurrent_local_activities=max_concurrent_activities, **options)


def import_modules(modules: Sequence[str]) -> None:
    """Import what the worker's runs need first (modules that register node types)."""
    from fm_lab.temporal.client import TemporalSetupError

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise TemporalSetupError(f"the worker cannot import {name!r}: {exc}") from None


def preload() -> None:
    """Import the node types and the model client now, not inside the first node."""
    from fm_lab.llm.client import preload as preload_llm
    from fm_lab.nodes.registry import default_registry

    default_registry()
    preload_llm()


async def run_worker(target: Target, *, policy: str | None = None, imports: Sequence[str] = (),
                     stop: asyncio.Event | None = None,
                     sticky_timeout_s: float | None = None, announce: bool = False) -> None:
    """Serve ``target``'s task queue until ``stop`` is set (or forever); ``announce``: say
    so on stderr once connected."""
    from fm_lab.temporal.activities import set_ceiling
    from fm_lab.temporal.client import connect

    set_ceiling(policy)
    import_modules(imports)
    preload()
    if sticky_timeout_s is None and (sticky := os.environ.get(STICKY_ENV, "").strip()):
        sticky_timeout_s = float(sticky)
    client = await connect(target)
    worker = make_worker(client, target.task_queue, sticky_timeout_s=sticky_timeout_s)
    if announce:
        from fm_lab.temporal.activities import ceiling

        print(f"fm-lab worker: serving queue {target.task_queue!r} on {target.address} "
              f"(namespace {target.namespace!r}, policy at most {ceiling()})",
              file=sys.stderr, flush=True)
    async with worker:
        await (stop or asyncio.Event()).wait()


def serve(address: str, task_queue: str, *, namespace: str = "default",
          policy: str | None = None, imports: Sequence[str] = ()) -> None:
    """``fm-lab worker``: serve until SIGINT or SIGTERM."""
    target = Target(address, namespace, task_queue)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await run_worker(target, policy=policy, imports=imports, stop=stop, announce=True)

    asyncio.run(main())


# What this process's other threads import to submit and answer runs. The worker's workflow
# sandbox swaps module tables while it loads workflow code, and a module imported for the
# first time by another thread meanwhile can vanish from sys.modules mid-import (KeyError):
# a background worker imports them before it starts.
_CALLER_MODULES = ("fm_lab.temporal.executor", "fm_lab.temporal.client",
                   "fm_lab.temporal.activities", "fm_lab.temporal.graph", "fm_lab.engine.api",
                   "fm_lab.engine.run", "temporalio.client", "temporalio.service")


@contextlib.contextmanager
def background_worker(target: Target, *, policy: str | None = None,
                      sticky_timeout_s: float | None = None) -> Iterator[None]:
    """A worker on a thread of this process for the block (tests, benchmarks, notebooks)."""
    for name in _CALLER_MODULES:  # see _CALLER_MODULES
        importlib.import_module(name)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failed: list[BaseException] = []
    started = threading.Event()

    def work() -> None:
        asyncio.set_event_loop(loop)

        async def main() -> None:
            started.set()
            await run_worker(target, policy=policy, stop=stop,
                             sticky_timeout_s=sticky_timeout_s)

        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            failed.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=work, name="fm_lab-temporal-worker", daemon=True)
    thread.start()
    started.wait()
    if failed:
        raise failed[0]
    try:
        yield
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        if failed:
            raise failed[0]


__all__ = ["background_worker", "import_modules", "make_worker", "run_worker", "serve"]
