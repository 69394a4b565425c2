"""``executor="temporal"``: submit, answer and cancel fm_lab runs on Temporal (the client side;
registered with :mod:`fm_lab.engine.executors` when imported)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any, Final

from fm_lab.engine.executors import register_executor
from fm_lab.temporal.ids import Target, workflow_id

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle

    from fm_lab.engine.run import Run
    from fm_lab.nodes.registry import NodeRegistry
    from fm_lab.security.policy import Policy
    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore

HEARTBEAT_ENV: Final = "FM_LAB_TEMPORAL_HEARTBEAT_S"
NODE_TIMEOUT_ENV: Final = "FM_LAB_TEMPORAL_NODE_TIMEOUT_S"
HEARTBEAT_S: Final = 10.0  # a worker silent this long has died: its node runs elsewhere
NODE_TIMEOUT_S: Final = 24 * 3600.0  # an attempt of a node without timeout_s


def store_locator(store: RunStore) -> str:
    """What a worker opens ``store`` by: its server URL, or its DuckDB file (workers on the
    same machine); a store only this process sees is refused."""
    from fm_lab.store.base import SHARED, has, server_url

    url = server_url(store)
    if url is not None:
        return url
    if has(store, SHARED) and not store.memory:
        return store.path
    raise ValueError(f"executor='temporal' needs a store its workers can open (a DuckDB file "
                     f"or a postgresql:// URL), not {store.path}")


def _seconds(env: str, default: float) -> float:
    text = os.environ.get(env, "").strip()
    try:
        return float(text) if text else default
    except ValueError:
        raise ValueError(f"{env}={text!r} is not a number of seconds") from None


async def _settled(handle: WorkflowHandle[Any, Any]) -> None:
    """Return once the run of ``handle`` has finished or waits only for answers."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    try:
        await handle.execute_update("settle")
    except (WorkflowUpdateFailedError, RPCError):  # it finished before the update came
        await handle.result()


class TemporalHandle:
    """A run submitted to Temporal: ``run_id``, the Temporal ``handle``, :meth:`wait`."""

    def __init__(self, run_id: str, store: RunStore, handle: WorkflowHandle[Any, Any]) -> None:
        self.run_id = run_id
        self.store = store
        self.handle = handle

    async def wait(self) -> Run:
        """The run once it has finished or waits only for answers (as the store shows it)."""
        from fm_lab.engine.run import Run

        await _settled(self.handle)
        return Run.load(self.run_id, self.store)

    def __repr__(self) -> str:
        return f"<Temporal run {self.run_id} ({self.handle.id})>"


class TemporalExecutor:
    """Runs workflows as Temporal workflows (see :mod:`fm_lab.temporal.workflow`)."""

    async def submit(self, target: str, workflow: Workflow, inputs: dict[str, Any], *,
                     run_id: str | None, store: RunStore, registry: NodeRegistry,
                     policy: Policy | str | None,
                     request_context: dict[str, Any] | None) -> TemporalHandle:
        """Validate, store the run's start (owned by the Temporal target) and start it."""
        from fm_lab.engine.api import new_run_id
        from fm_lab.engine.plan import Plan
        from fm_lab.security.policy import resolve_policy, using_policy
        from fm_lab.temporal.activities import RunRef, store_start, workflow_span_id
        from fm_lab.temporal.client import connect
        from fm_lab.temporal.graph import graph_of
        from fm_lab.tracing.spans import linked_parent, new_trace_id

        where = Target.parse(target)
        locator = store_locator(store)
        chosen = resolve_policy(policy, store=store)
        with using_policy(chosen):
            plan = Plan.cached(workflow, registry)
        prepared = plan.prepare_inputs(inputs, plain=True)
        client = await connect(where)  # unreachable: fails before anything is stored
        run_id = run_id or new_run_id()
        linked = linked_parent()
        trace_id = linked[0] if linked else new_trace_id()
        store_start(store, run_id, plan.workflow, prepared, parent=None, trace_id=trace_id,
                    policy=chosen.mode, owner=where.url)
        ref: RunRef = {"run_id": run_id, "store": locator, "policy": chosen.mode,
                       "trace_id": trace_id, "workflow_id": plan.workflow.id,
                       "owner": where.url, "request_context": dict(request_context or {})}
        args = {"run": ref, "graph": graph_of(plan), "inputs": prepared, "seq": 1,
                "span": workflow_span_id(run_id), "parent_span": linked[1] if linked else None,
                "heartbeat_s": _seconds(HEARTBEAT_ENV, HEARTBEAT_S),
                "node_timeout_s": _seconds(NODE_TIMEOUT_ENV, NODE_TIMEOUT_S), "parent": None}
        try:
            handle = await client.start_workflow("fm_lab.run", args, id=workflow_id(run_id),
                                                 task_queue=where.task_queue)
        except BaseException as exc:
            store.ingest(run_id, [{"k": "run", "status": "failed", "outputs": None,
                                   "error": {"kind": "system", "domain": "temporal",
                                             "message": str(exc), "type": type(exc).__name__},
                                   "state": None, "ended": time.time(), "seq": 2}])
            raise
        return TemporalHandle(run_id, store, handle)

    async def resume(self, owner: str, run_id: str, path_id: str, data: Any, user: str,
                     store: RunStore) -> None:
        """Send the answer as the run's ``resume`` update; returns once it settled again."""
        from temporalio.client import WorkflowUpdateFailedError

        from fm_lab.engine.errors import ResumeError
        from fm_lab.temporal.client import connect

        client = await connect(Target.parse(owner))
        handle = client.get_workflow_handle(workflow_id(run_id))
        try:
            await handle.execute_update("resume", {"path": path_id, "data": data, "by": user})
        except WorkflowUpdateFailedError as exc:
            raise ResumeError(str(exc.cause or exc)) from None

    async def settled(self, owner: str, run_id: str) -> None:
        """Return once the run has finished or waits only for answers."""
        from fm_lab.temporal.client import connect

        client = await connect(Target.parse(owner))
        await _settled(client.get_workflow_handle(workflow_id(run_id)))

    async def cancel(self, owner: str, run_id: str, wait_s: float) -> None:
        """Ask Temporal to cancel the run; wait up to ``wait_s`` for it to end."""
        from fm_lab.temporal.client import connect

        client = await connect(Target.parse(owner))
        handle = client.get_workflow_handle(workflow_id(run_id))
        await handle.cancel()
        try:
            await asyncio.wait_for(handle.result(), wait_s)
        except Exception:  # still stopping (or ended otherwise): the store will say
            return


EXECUTOR: Final = TemporalExecutor()
register_executor("temporal", EXECUTOR)

__all__ = ["EXECUTOR", "TemporalExecutor", "TemporalHandle", "store_locator"]
