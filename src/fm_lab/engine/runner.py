"""The scheduler: runs a plan's nodes as their inputs become ready, checkpointing each result
in the run journal (group commit) before any dependent starts."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fm_lab.engine.context import NodeRunContext
from fm_lab.engine.errors import classify
from fm_lab.engine.templating import render_template, render_value
from fm_lab.spec.models import RetryPolicy
from fm_lab.store.codec import NotSerialisableError, dumps
from fm_lab.store.errors import StoreLockedError

if TYPE_CHECKING:
    from fm_lab.engine.plan import Plan
    from fm_lab.store.duckdb_store import RunSnapshot, Store
    from fm_lab.store.journal import Journal

_NO_RETRY = RetryPolicy()
INGEST_EVERY_RECORDS = 20_000
INGEST_EVERY_S = 2.0
INGEST_FIRST_S = 0.25  # a run still going after this shows in runs() of other processes


@dataclass(slots=True)
class _Finished:
    node_id: str
    ok: bool
    output: Any
    error: dict[str, Any] | None
    attempts: int
    started: float
    ended: float
    state_patch: dict[str, Any] | None
    input: Any


class Runner:
    """Executes one run of a :class:`Plan` against a :class:`Store`."""

    def __init__(
        self,
        plan: Plan,
        store: Store,
        run_id: str,
        inputs: dict[str, Any],
        request_context: dict[str, Any] | None = None,
        snapshot: RunSnapshot | None = None,
        journal: Journal | None = None,
        start: dict[str, Any] | None = None,
    ) -> None:
        self.plan = plan
        self.store = store
        self.run_id = run_id
        self.inputs = inputs
        self.request_context = request_context if request_context is not None else {}
        self.abort = asyncio.Event()
        self.state: dict[str, Any] = plan.initial_state()
        self.status: dict[str, str] = dict.fromkeys(plan.nodes, "pending")
        self.view: dict[str, dict[str, Any]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self._unresolved = {n: len(e) for n, e in plan.incoming.items()}
        self._live = dict.fromkeys(plan.nodes, 0)
        self._ready: deque[str] = deque()
        self._finished: deque[_Finished] = deque()
        self._wake = asyncio.Event()
        self._journal: Journal | None = journal
        self._unflushed: list[dict[str, Any]] = []
        self._last_ingest = time.monotonic()
        self._seq = snapshot.journal_seq if snapshot else 0
        self._committed = snapshot.nodes if snapshot else {}
        self._start_record = start
        self._ingested_once = start is None
        self._restorable: set[str] = set()
        self.outputs: Any = None
        self.error: dict[str, Any] | None = None
        self.run_status = "running"
        self._stored = False
        self._scope = {
            "nodes": self.view,
            "inputs": self.inputs,
            "state": self.state,
            "run": {"id": run_id},
        }

    def scope(self) -> dict[str, Any]:
        """The template scope (live view: nodes, inputs, state, run)."""
        return self._scope

    # ---- the loop ------------------------------------------------------------------------
    async def execute(self) -> str:
        """Run to the end; return the final status."""
        if self._journal is None:
            self._journal = self.store.open_journal(self.run_id)
        try:
            self._start()
            try:
                await self._loop()
            except Exception as exc:  # an engine fault: keep what is committed, fail the run
                self.run_status = "failed"
                self.error = {"node": None, **classify(exc, "engine"), "kind": "system"}
            self._finish()
        except BaseException:
            self._flush(wait=False)
            raise
        finally:
            if self._journal is not None:
                self._journal.close(remove=self._stored)
        return self.run_status

    def _start(self) -> None:
        if self._start_record is not None:
            self._append(self._start_record)
            if self._journal is None:  # a memory store: show the run at once
                self._flush(wait=True)
        committed = {
            n: c
            for n, c in self._committed.items()
            if c["status"] in ("succeeded", "skipped") and n in self.status
        }
        self._restorable = set(committed)
        for record in committed.values():  # replay state patches in commit order
            if record.get("state_patch"):
                self.state.update(record["state_patch"])
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

    def _restore(self, node_id: str, committed: dict[str, Any]) -> None:
        self.results[node_id] = committed
        succeeded = committed["status"] == "succeeded"
        self.status[node_id] = committed["status"]
        self.view[node_id] = {
            "output": committed["output"] if succeeded else None,
            "status": committed["status"],
        }
        self._resolve_outgoing(node_id, succeeded)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        running: dict[str, asyncio.Task[None]] = {}
        limit = self.plan.workflow.max_concurrency
        ready, finished, wake = self._ready, self._finished, self._wake
        try:
            while True:
                while ready and (limit is None or len(running) < limit):
                    node_id = ready.popleft()
                    self.status[node_id] = "running"
                    running[node_id] = loop.create_task(self._execute(node_id))
                if not running:
                    break
                if self._unflushed:
                    try:
                        await asyncio.wait_for(wake.wait(), self._ingest_interval())
                    except TimeoutError:
                        self._maybe_ingest()
                        continue
                else:
                    await wake.wait()
                wake.clear()
                batch = list(finished)
                finished.clear()
                failure = None
                for done in batch:
                    del running[done.node_id]
                    if not self._record(done) and failure is None:
                        failure = done
                self._commit()
                if failure is not None:
                    self.run_status = "failed"
                    self.error = {"node": failure.node_id, **(failure.error or {})}
                    return
                for done in batch:
                    self._resolve_outgoing(done.node_id, True)
                self._maybe_ingest()
        finally:
            if running:
                self.abort.set()
                for task in running.values():
                    task.cancel()
                await asyncio.gather(*running.values(), return_exceptions=True)

    async def _execute(self, node_id: str) -> None:
        plan = self.plan
        node = plan.nodes[node_id]
        node_type = plan.types[node_id]
        policy = node.retry or _NO_RETRY
        started = time.time()
        attempt = 0
        rendered: Any = None
        while True:
            attempt += 1
            ctx = NodeRunContext(self, node_id, attempt)
            try:
                config = plan.static_config.get(node_id)
                if config is None:
                    rendered = render_value(node.config, self._scope)
                    config = node_type.Config.model_validate(rendered)
                inputs = {
                    p: self.view[p]["output"]
                    for p in plan.predecessors[node_id]
                    if self.status[p] == "succeeded"
                }
                result = node_type(config).run(ctx, inputs)
                if inspect.isawaitable(result):
                    if node.timeout_s is not None:
                        result = await asyncio.wait_for(result, node.timeout_s)
                    else:
                        result = await result
                self._finished.append(
                    _Finished(
                        node_id,
                        True,
                        result,
                        None,
                        attempt,
                        started,
                        time.time(),
                        ctx.state_patch,
                        rendered,
                    )
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = classify(exc, node.type)
                if (
                    attempt < policy.max_attempts
                    and error["retryable"]
                    and error["kind"] in policy.retry_on
                    and not self.abort.is_set()
                ):
                    await asyncio.sleep(policy.delay(attempt))
                    continue
                error["attempts"] = attempt
                self._finished.append(
                    _Finished(
                        node_id, False, None, error, attempt, started, time.time(), None, rendered
                    )
                )
                break
        self._wake.set()

    # ---- results -------------------------------------------------------------------------
    def _record(self, done: _Finished) -> bool:
        """Journal a finished node; returns False if it failed (or its output cannot be kept)."""
        record = {
            "k": "node",
            "node": done.node_id,
            "type": self.plan.nodes[done.node_id].type,
            "status": "succeeded" if done.ok else "failed",
            "attempts": done.attempts,
            "input": done.input,
            "output": done.output,
            "error": done.error,
            "state_patch": done.state_patch,
            "started": done.started,
            "ended": done.ended,
        }
        if done.ok:
            try:
                self._append(record)
            except NotSerialisableError as exc:
                done.ok = False
                done.error = classify(exc, record["type"])
                record.update(status="failed", output=None, error=done.error, state_patch=None)
                self._append(record)
        else:
            self._append(record)
        self.results[done.node_id] = record
        if not done.ok:
            self.status[done.node_id] = "failed"
            return False
        self.status[done.node_id] = "succeeded"
        self.view[done.node_id] = {"output": done.output, "status": "succeeded"}
        if done.state_patch:
            self.state.update(done.state_patch)
        return True

    def _append(self, record: dict[str, Any]) -> None:
        self._seq += 1
        record["seq"] = self._seq
        if self._journal is not None:
            self._journal.append(record)
        elif record.get("output") is not None:
            dumps(record["output"])  # a memory store must refuse what a journal would refuse
        self._unflushed.append(record)

    def _commit(self) -> None:
        if self._journal is not None:
            self._journal.commit()

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
                live = bool(render_template(edge.condition, self._scope))
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
        record = {
            "k": "node",
            "node": node_id,
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
        self._append(record)
        self.results[node_id] = record
        self._resolve_outgoing(node_id, False)

    def _finish(self) -> None:
        if self.run_status == "running":
            try:
                self.outputs = self._collect_outputs()
                self.run_status = "succeeded"
            except Exception as exc:
                self.run_status = "failed"
                self.error = {"node": None, **classify(exc, "outputs")}
        self._append(
            {
                "k": "run",
                "status": self.run_status,
                "outputs": self.outputs,
                "error": self.error,
                "state": self.state,
                "ended": time.time(),
            }
        )
        self._commit()
        self._stored = self._flush(wait=True)

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

    def _flush(self, wait: bool) -> bool:
        """Ingest journaled records into DuckDB; returns False when the file is busy (the
        records stay in the journal, which is ingested later, so nothing is lost)."""
        self._last_ingest = time.monotonic()
        if not self._unflushed:
            return True
        try:
            self.store.ingest(self.run_id, self._unflushed, wait=wait)
        except StoreLockedError:
            if self._journal is None:
                raise
            if wait:
                self.store.recover_later()
            return False
        self._unflushed = []
        self._ingested_once = True
        return True

    def _ingest_interval(self) -> float:
        return INGEST_EVERY_S if self._ingested_once else INGEST_FIRST_S

    def _maybe_ingest(self) -> None:
        if (
            len(self._unflushed) >= INGEST_EVERY_RECORDS
            or time.monotonic() - self._last_ingest >= self._ingest_interval()
        ):
            self._commit()
            self._flush(wait=False)
