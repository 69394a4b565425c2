"""The scheduler: runs a plan's nodes as their inputs become ready, checkpointing each result
in the run journal (group commit, off the event loop) before any dependent starts.

A root runner owns the run (start and end records, ingestion ticks, cancel checks); nested
runners execute sub-graphs (foreach bodies, parallel branches) under a path prefix in the same
journal. One node's execution and its checkpoint are :mod:`fm_lab.engine.execute`'s; the
records written are :mod:`fm_lab.store.records`'.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from fm_lab.engine.errors import classify
from fm_lab.engine.execute import Outcome, execute_node, record_outcome
from fm_lab.engine.templating import render_template, render_value
from fm_lab.exceptions import NodeError
from fm_lab.store.journal import JournalError
from fm_lab.tracing.spans import activate, deactivate

if TYPE_CHECKING:
    from fm_lab.engine.plan import Plan
    from fm_lab.engine.session import RunSession
    from fm_lab.store.records import (
        NodeRecord,
        ResumeRecord,
        RunEndRecord,
        SpanRecord,
        StartRecord,
        StoredNode,
    )

__all__ = ["Outcome", "Runner", "execute_node", "record_outcome"]

_SPAN_STATUS = {"succeeded": "ok", "failed": "error"}


class Runner:
    """Executes a :class:`Plan` inside a :class:`RunSession` (the root graph, or a nested one
    under ``prefix``)."""

    def __init__(
        self,
        plan: Plan,
        session: RunSession,
        inputs: dict[str, Any],
        *,
        prefix: str = "",
        start: StartRecord | None = None,
        root: bool = True,
    ) -> None:
        self.plan = plan
        self.session = session
        self.inputs = inputs
        self.prefix = prefix
        self.root = root
        self.state: dict[str, Any] = plan.initial_state()
        self.status: dict[str, str] = dict.fromkeys(plan.nodes, "pending")
        self.view: dict[str, dict[str, Any]] = {}
        self.results: dict[str, NodeRecord | StoredNode] = {}  # this run's, or restored
        self._unresolved = {n: len(e) for n, e in plan.incoming.items()}
        self._live = dict.fromkeys(plan.nodes, 0)
        self._ready: deque[str] = deque()
        self._finished: deque[Outcome] = deque()
        self._wake = asyncio.Event()
        self._start_record = start
        self._restorable: set[str] = set()
        self._tick_handle: asyncio.TimerHandle | None = None
        self.outputs: Any = None
        self.error: dict[str, Any] | None = None
        self.run_status = "running"
        self.stored = False
        self._started = time.time()
        self._scope = {
            "nodes": self.view,
            "inputs": self.inputs,
            "state": self.state,
            "run": {"id": session.run_id},
        }

    @property
    def run_id(self) -> str:
        return self.session.run_id

    def scope(self) -> dict[str, Any]:
        """The template scope (live view: nodes, inputs, state, run)."""
        return self._scope

    # ---- the root run --------------------------------------------------------------------
    async def execute(self) -> str:
        """Run the whole run to its end (or suspension); return the final status."""
        session, recorder = self.session, self.session.recorder
        session.wake = self._wake
        loop = asyncio.get_running_loop()
        self._tick_handle = loop.call_later(recorder.interval(), self._tick)
        try:
            if self._start_record is not None:
                recorder.append(self._start_record)
            for path, data in session.resume.items():
                resume: ResumeRecord = {"k": "resume", "path": path, "data": data,
                                        "at": time.time()}
                if (by := session.answered_by.get(path)) is not None:
                    resume["by"] = by
                    if path in session.expired:
                        resume["expired"] = True
                recorder.append(resume)
            await recorder.durable()  # an accepted answer is durable before anything runs
            session.emit({"type": "run", "status": "running", "workflow_id": session.workflow_id,
                          "resumed": self._start_record is None})
            token = activate(session.workflow_span)
            try:
                await self.run_graph()
            except Exception as exc:  # keep what is committed, fail the run
                self.run_status = "failed"
                error = classify(exc, "engine")
                if not isinstance(exc, NodeError):
                    error["kind"] = "system"  # an engine fault
                self.error = {"node": None, **error}
            finally:
                deactivate(token)
            await self._finish()
        except BaseException:
            try:
                recorder.flush(wait=False)
            finally:
                raise
        finally:
            if self._tick_handle is not None:
                self._tick_handle.cancel()
        return self.run_status

    def _tick(self) -> None:
        session, recorder = self.session, self.session.recorder
        try:
            renew = getattr(recorder.journal, "renew", None)
            if renew is not None and not renew() and not session.cancel_requested:
                session.cancel()  # a server store's lease lapsed and another process took it
            if (not session.cancel_requested
                    and session.store.take_cancel_request(session.run_id)):
                session.cancel()  # asked by another process (fm_lab.cancel there)
            recorder.maybe_ingest()
        except Exception as exc:  # a store out of reach for a moment: try at the next tick
            logging.getLogger("fm_lab").warning("the periodic check of run %s failed: %s",
                                                session.run_id, str(exc).split("\n")[0])
        finally:
            loop = asyncio.get_running_loop()
            self._tick_handle = loop.call_later(recorder.interval(), self._tick)

    async def _finish(self) -> None:
        if self.run_status == "running":
            self._settle_status()
        session, recorder = self.session, self.session.recorder
        self._append_end()
        try:
            await recorder.durable()
        except JournalError as exc:  # the end cannot be journaled: DuckDB gets it directly
            self.run_status, self.outputs = "failed", None
            self.error = {"node": None, **classify(exc, "engine"), "kind": "system"}
            self._append_end()
        self.stored = await recorder.aflush(wait=True, final=True)
        session.emit({"type": "run", "status": self.run_status, "error": self.error,
                      "outputs": self.outputs})

    def _append_end(self) -> None:
        """Queue the workflow span and the run's end record."""
        session, recorder = self.session, self.session.recorder
        ended = time.time()
        span_id = session.workflow_span.span_id
        assert span_id is not None  # a run's workflow span has its id from the run id
        workflow_span: SpanRecord = {
            "k": "span",
            "trace": session.trace_id,
            "span": span_id,
            "parent": session.parent_span_id,
            "run": session.run_id,
            "kind": "workflow",
            "name": session.workflow_id,
            "entity": session.workflow_id,
            "workflow": session.workflow_id,
            "started": self._started,
            "ended": ended,
            "status": _SPAN_STATUS.get(self.run_status, self.run_status),
            "error": self.error,
            "output": self.outputs,
        }
        end: RunEndRecord = {
            "k": "run",
            "status": self.run_status,
            "outputs": self.outputs,
            "error": self.error,
            "state": self.state,
            "ended": ended,
        }
        recorder.append(workflow_span)
        recorder.append(end)

    def _settle_status(self) -> None:
        if self.session.cancel_requested:
            self.run_status = "cancelled"
        elif any(s == "suspended" for s in self.status.values()):
            self.run_status = "suspended"
        else:
            try:
                self.outputs = self._collect_outputs()
                self.run_status = "succeeded"
            except Exception as exc:
                self.run_status = "failed"
                self.error = {"node": None, **classify(exc, "outputs")}

    # ---- the graph -----------------------------------------------------------------------
    async def run_graph(self) -> str:
        """Run this graph's nodes; returns running (finished normally), failed or cancelled.
        For a nested graph the final status (succeeded/suspended/failed) is settled here."""
        self._start()
        await self._loop()
        if not self.root and self.run_status == "running":
            self._settle_status()
        return self.run_status

    def _start(self) -> None:
        session, prefix = self.session, self.prefix
        committed: dict[str, StoredNode] = {}
        for node_id in self.plan.nodes:
            record = session.committed.get(prefix + node_id)
            if record is None:
                continue
            status = record["status"]
            if status in ("succeeded", "skipped") or (
                status == "suspended"
                and record.get("leaf", True)
                and not session.has_resume(prefix + node_id)
            ):
                committed[node_id] = record
        self._restorable = set(committed)
        patches = [  # this graph's nodes and the single-node bodies they ran (loop[3], par.a)
            r
            for path, r in session.committed.items()
            if r.get("state_patch")
            and r["status"] == "succeeded"
            and path.startswith(prefix)
            and "/" not in path[len(prefix) :]
        ]
        for record in sorted(patches, key=lambda r: r.get("seq") or 0):
            self.state.update(record["state_patch"] or {})  # replayed in commit order
        for node_id in self.plan.order:
            if node_id in self._restorable:
                self._restorable.discard(node_id)
                self._restore(node_id, committed[node_id])
            elif (
                self.status[node_id] == "pending"
                and self.plan.incoming[node_id]
                and self._unresolved[node_id] == 0
                and not self._live[node_id]
            ):
                self._skip(node_id)  # its skip was not committed before the crash
        for node_id in self.plan.entry:
            if self.status[node_id] == "pending":
                self.status[node_id] = "ready"
                self._ready.append(node_id)

    def _restore(self, node_id: str, committed: StoredNode) -> None:
        self.results[node_id] = committed
        status = committed["status"]
        self.status[node_id] = status
        succeeded = status == "succeeded"
        self.session.emit_node(self.prefix + node_id, node_id, status,
                               error=committed.get("error"), restored=True)
        self.view[node_id] = {
            "output": committed["output"] if succeeded else None,
            "status": status,
        }
        if status != "suspended":
            self._resolve_outgoing(node_id, succeeded)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        running: dict[str, asyncio.Task[None]] = {}
        limit = self.plan.workflow.max_concurrency
        ready, finished, wake = self._ready, self._finished, self._wake
        session, recorder = self.session, self.session.recorder
        try:
            while True:
                if session.cancel_requested:
                    self.run_status = "cancelled"
                    return
                while ready and (limit is None or len(running) < limit):
                    node_id = ready.popleft()
                    self.status[node_id] = "running"
                    session.emit_node(self.prefix + node_id, node_id, "running")
                    running[node_id] = loop.create_task(self._execute(node_id))
                if not running:
                    break
                await wake.wait()
                wake.clear()
                batch = list(finished)
                finished.clear()
                failure = None
                for outcome in batch:
                    node_id = outcome.path[len(self.prefix) :]
                    del running[node_id]
                    if not self._record(node_id, outcome) and failure is None:
                        failure = (node_id, outcome)
                if not self._last(batch, running, failure):
                    await recorder.durable()  # dependents start once their inputs are durable
                if failure is not None:
                    self.run_status = "failed"
                    self.error = {"node": failure[0], **(failure[1].error or {})}
                    if self.prefix:
                        self.error["path"] = failure[1].path
                    return
                for outcome in batch:
                    if outcome.status == "succeeded":
                        self._resolve_outgoing(outcome.path[len(self.prefix) :], True)
        finally:
            if running:
                if self.root:
                    session.abort.set()
                for task in running.values():
                    task.cancel()
                await asyncio.gather(*running.values(), return_exceptions=True)

    def _last(self, batch: list[Outcome], running: dict[str, asyncio.Task[None]],
              failure: tuple[str, Outcome] | None) -> bool:
        """True when ``batch`` ends the run: nothing runs or waits, and nothing can follow it
        (a failure ends the run; a success has no outgoing edge). Its records then go in the
        commit of the run's end (one commit, one ``fsync`` fewer): no node depends on them,
        and a crash before that commit finds the run as it would mid-node."""
        if not self.root or running or self._ready:
            return False
        if failure is not None:
            return True
        outgoing = self.plan.outgoing
        return not any(outgoing[o.path[len(self.prefix):]] for o in batch
                       if o.status == "succeeded")

    async def _execute(self, node_id: str) -> None:
        plan = self.plan
        inputs = {
            p: self.view[p]["output"]
            for p in plan.predecessors[node_id]
            if self.status[p] == "succeeded"
        }
        try:
            outcome = await execute_node(
                self,
                plan.nodes[node_id],
                plan.types[node_id],
                plan.static_config.get(node_id),
                self._scope,
                inputs,
                self.prefix + node_id,
            )
            self._finished.append(outcome)
        finally:
            self._wake.set()

    # ---- results -------------------------------------------------------------------------
    def _record(self, node_id: str, outcome: Outcome) -> bool:
        """Journal a finished node; returns False if it failed."""
        record = record_outcome(self.session, outcome, self.plan.nodes[node_id].type, node_id)
        self.results[node_id] = record
        self.status[node_id] = outcome.status
        if outcome.status == "failed":
            return False
        if outcome.status == "suspended":
            self.view[node_id] = {"output": None, "status": "suspended"}
            return True
        self.view[node_id] = {"output": outcome.output, "status": "succeeded"}
        if outcome.state_patch:
            self.state.update(outcome.state_patch)
        return True

    def _resolve_outgoing(self, node_id: str, succeeded: bool) -> None:
        edges = self.plan.outgoing[node_id]
        if not edges:
            return
        taken = (
            self.plan.types[node_id].taken_handles(self.view[node_id]["output"])
            if succeeded
            else None
        )
        for edge in edges:
            live = succeeded and (
                edge.source_handle is None or taken is None or edge.source_handle in taken
            )
            if live and edge.condition is not None:
                try:
                    live = bool(render_template(edge.condition, self._scope))
                except Exception as exc:
                    raise NodeError(
                        f"the condition {edge.condition!r} of edge {edge.source} -> "
                        f"{edge.target} failed: {exc}",
                        kind="validation",
                        retryable=False,
                        domain="edge",
                    ) from exc
            target = edge.target
            if live:
                self._live[target] += 1
            self._unresolved[target] -= 1
            if (
                self._unresolved[target] == 0
                and self.status[target] == "pending"
                and target not in self._restorable
            ):
                if self._live[target]:
                    self.status[target] = "ready"
                    self._ready.append(target)
                else:
                    self._skip(target)

    def _skip(self, node_id: str) -> None:
        self.status[node_id] = "skipped"
        self.view[node_id] = {"output": None, "status": "skipped"}
        now = time.time()
        record: NodeRecord = {
            "k": "node",
            "node": self.prefix + node_id,
            "type": self.plan.nodes[node_id].type,
            "status": "skipped",
            "attempts": 0,
            "input": None,
            "output": None,
            "error": None,
            "state_patch": None,
            "started": now,
            "ended": now,
        }
        self.session.recorder.append(record)
        self.results[node_id] = record
        self.session.emit_node(self.prefix + node_id, node_id, "skipped")
        self._resolve_outgoing(node_id, False)

    def _collect_outputs(self) -> Any:
        workflow = self.plan.workflow
        if workflow.outputs:
            return render_value(workflow.outputs, self._scope)
        outputs: dict[str, Any] = {}
        targets = [n for n, node in workflow.nodes.items() if node.type == "output"]
        if not targets:
            targets = [n for n, edges in self.plan.outgoing.items() if not edges]
        for node_id in targets:
            if self.status[node_id] != "succeeded":
                continue
            config = self.results[node_id].get("input") or self.plan.nodes[node_id].config
            name = config.get("name") if isinstance(config, dict) else None
            outputs[name or node_id] = self.view[node_id]["output"]
        return outputs
