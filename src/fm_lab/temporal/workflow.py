"""The Temporal workflow of an fm_lab run: a deterministic walk of the run's plan.

It mirrors :class:`fm_lab.engine.runner.Runner` on Temporal's terms: a node is an activity
(:mod:`fm_lab.temporal.activities`; pure ones local activities) with the node's retry policy
and timeout, ``sleep``/``sleep_until`` are timers, a waiting node (approval, user_input,
wait_for_event) waits for the ``resume`` update, ``foreach``/``parallel`` bodies run
concurrently here (sub-workflows walked like the run's own graph) and a ``subflow`` is a child
workflow. The workflow JSON travels in the input, so a run keeps its version.

Checkpoint records come back from the activities; the workflow numbers them and hands them, in
order, to the store activity (group commit), so the fm_lab store shows the run as a local one
would: ``running``, ``suspended`` while only answers are awaited, then its end.

Only the standard library, ``temporalio`` and :mod:`fm_lab.temporal.graph` (types) are used:
the code runs in Temporal's sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from fm_lab.temporal.graph import Graph

LOCAL_TYPES: Final = frozenset({"input", "output", "merge", "branch", "template", "transform",
                                "set_state", "router", "log", "fail"})
"""Node types without I/O: run as local activities (no task-queue round trip)."""
WAITING_TYPES: Final = frozenset({"approval", "user_input", "wait_for_event"})
EXPIRED: Final = "__fm_expired__"  # fm_lab.engine.context.EXPIRED: a wait that timed out
LOCAL_TIMEOUT: Final = timedelta(minutes=5)
STORE_RETRY: Final = RetryPolicy(initial_interval=timedelta(milliseconds=200),
                                 maximum_interval=timedelta(seconds=10))
FLUSH_EVERY_S: Final = 0.5  # while nodes run, records reach the store at most this often
FLUSH_RECORDS: Final = 5_000  # ... or once this many wait
CRASH_ATTEMPTS: Final = 3  # attempts beyond a node's own for workers that died under it


def _retry_policy(retry: dict[str, Any] | None) -> RetryPolicy:
    """The node's retry policy in Temporal's terms (the activity decides what is retried)."""
    retry = retry or {}
    backoff = max(float(retry.get("backoff_s", 0.5)), 0.001)
    return RetryPolicy(
        initial_interval=timedelta(seconds=backoff),
        backoff_coefficient=max(float(retry.get("multiplier", 2.0)), 1.0),
        maximum_interval=timedelta(seconds=max(float(retry.get("max_backoff_s", 30.0)),
                                               backoff)),
        maximum_attempts=int(retry.get("max_attempts", 1)) + CRASH_ATTEMPTS,
    )


def _failure(exc: BaseException) -> dict[str, Any]:
    """An activity or child workflow that failed for good, as an fm_lab error."""
    cause = exc.__cause__ or exc
    details = getattr(cause, "details", None)
    if details and isinstance(details[0], dict) and "kind" in details[0]:
        return dict(details[0])
    return {"kind": "system", "domain": "temporal", "retryable": False,
            "message": str(cause) or type(cause).__name__, "type": type(cause).__name__}


@workflow.defn(name="fm_lab.run")
class FmLabRun:
    """One fm_lab run (its workflow id is ``fm_lab-<run_id>``)."""

    def __init__(self) -> None:
        self.args: dict[str, Any] = {}
        self.buffer: list[dict[str, Any]] = []  # records not yet handed to the store
        self.flushing = False
        self.closing = False  # the run ends: store what is left at once
        self.last_flush = 0.0
        self.seq = 0
        self.busy = 0  # activities, timers and child workflows under way
        self.waiting: dict[str, dict[str, Any]] = {}  # path -> what it waits for
        self.answers: dict[str, tuple[Any, str | None]] = {}
        self.steps: dict[str, Any] = {}
        self.marked = False  # the store shows the run suspended
        self.done = False
        self.result: dict[str, Any] = {}
        self.children_waiting: set[str] = set()
        self.notes: set[asyncio.Future[None]] = set()  # signals to a parent under way

    # ---- messages --------------------------------------------------------------------------
    @workflow.update(name="resume")
    async def resume(self, answer: dict[str, Any]) -> str:
        """Answer the waiting path ``answer["path"]`` with ``answer["data"]`` (checked by the
        caller) and return the run's status once it finished or suspended again."""
        path = answer["path"]
        self.waiting.pop(path, None)
        self.answers[path] = (answer.get("data"), answer.get("by"))
        self.busy += 1  # the waiting node goes on (it takes this unit over)
        self._unmark()
        await workflow.wait_condition(self.settled)
        return self.status()

    @resume.validator
    def _check_resume(self, answer: dict[str, Any]) -> None:
        path = answer.get("path")
        if path not in self.waiting or path in self.answers:
            raise ValueError(f"run {self.args.get('run', {}).get('run_id')} does not wait at "
                             f"{path!r} (it waits at: {', '.join(self.waiting) or 'nothing'})")

    @workflow.update(name="settle")
    async def settle(self) -> str:
        """The run's status once it has finished or waits only for answers."""
        await workflow.wait_condition(self.settled)
        return self.status()

    @workflow.signal(name="child")
    def child(self, note: dict[str, Any]) -> None:
        """A child run (subflow) reports that it waits for answers, or goes on."""
        path = note["path"]
        if note["waiting"] and path not in self.children_waiting:
            self.children_waiting.add(path)
            self.busy -= 1
        elif not note["waiting"] and path in self.children_waiting:
            self.children_waiting.discard(path)
            self.busy += 1
            self._unmark()

    @workflow.query(name="status")
    def status(self) -> str:
        """``running``, ``suspended`` or the run's end status."""
        if self.done:
            return str(self.result.get("status"))
        return "suspended" if self.marked else "running"

    def settled(self) -> bool:
        return self.done or (self.marked and self.busy == 0 and not self.buffer
                             and not self.flushing)

    # ---- the run ---------------------------------------------------------------------------
    @workflow.run
    async def run(self, args: dict[str, Any]) -> dict[str, Any]:
        """Walk the plan; return ``{status, outputs, error}``."""
        self.args = args
        self.seq = int(args.get("seq", 1))
        flusher = asyncio.ensure_future(self._flush_forever())
        marker = asyncio.ensure_future(self._mark_when_waiting())
        graph = _Graph(self, args["graph"], args["inputs"], "")
        started = workflow.now().timestamp()
        try:
            status = await graph.execute()
        except asyncio.CancelledError:
            status = "cancelled"
            graph.status_, graph.error = "cancelled", None
        outputs, error = graph.outputs, graph.error
        self._end(status, outputs, error, graph.state, started)
        self.closing = True
        marker.cancel()
        await workflow.wait_condition(lambda: not self.buffer and not self.flushing)
        flusher.cancel()
        self.result = {"status": status, "outputs": outputs, "error": error}
        self.done = True
        await workflow.wait_condition(workflow.all_handlers_finished)  # answers get replies
        return self.result

    def _end(self, status: str, outputs: Any, error: dict[str, Any] | None,
             state: dict[str, Any], started: float) -> None:
        run = self.args["run"]
        ended = workflow.now().timestamp()
        self.record({"k": "span", "trace": run["trace_id"], "span": self.args["span"],
                     "parent": self.args.get("parent_span"), "run": run["run_id"],
                     "kind": "workflow", "name": run["workflow_id"],
                     "entity": run["workflow_id"], "workflow": run["workflow_id"],
                     "started": started, "ended": ended,
                     "status": {"succeeded": "ok", "failed": "error"}.get(status, status),
                     "error": error, "output": outputs})
        self.record({"k": "run", "status": status, "outputs": outputs, "error": error,
                     "state": state, "ended": ended})

    # ---- the store -------------------------------------------------------------------------
    def record(self, record: dict[str, Any]) -> None:
        """Queue a checkpoint record for the store; steps are kept for later executions."""
        if record.get("k") == "step":
            self.steps[record["name"]] = record.get("result")
        self.buffer.append(record)

    def _urgent(self) -> bool:
        """Store now: the run ends or waits (nothing runs), or many records wait."""
        return self.closing or self.busy == 0 or len(self.buffer) >= FLUSH_RECORDS

    async def _flush_forever(self) -> None:
        """Group commit: hand the queued records to the store activity, one batch at a time,
        at most every ``FLUSH_EVERY_S`` while nodes run (at once when the run ends or waits:
        the store then shows what the run did, as a local run's periodic ingest does)."""
        while True:
            await workflow.wait_condition(lambda: bool(self.buffer))
            due = self.last_flush + FLUSH_EVERY_S - workflow.now().timestamp()
            if due > 0 and not self._urgent():
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(self._urgent, timeout=timedelta(seconds=due))
            batch, self.buffer = self.buffer, []
            self.flushing = True
            try:
                await workflow.execute_activity(
                    "fm_lab.store", {"run": self.args["run"], "seq": self.seq,
                                     "records": batch},
                    start_to_close_timeout=timedelta(minutes=2), retry_policy=STORE_RETRY,
                    heartbeat_timeout=timedelta(seconds=self.args["heartbeat_s"]))
            finally:
                self.seq += len(batch)
                self.flushing = False
                self.last_flush = workflow.now().timestamp()

    async def _mark_when_waiting(self) -> None:
        """Store the run as ``suspended`` whenever nothing but answers is awaited, and tell a
        parent run (this one is a subflow's child)."""
        while True:
            await workflow.wait_condition(
                lambda: not self.marked and self.busy == 0
                and bool(self.waiting or self.children_waiting))
            self.marked = True
            self.record({"k": "run", "status": "suspended", "outputs": None, "error": None,
                         "state": None, "ended": workflow.now().timestamp()})
            await self._tell_parent(True)

    def _unmark(self) -> None:
        if self.marked:
            self.marked = False
            self.record({"k": "run", "status": "running", "outputs": None, "error": None,
                         "state": None, "ended": None})
            self.notes.add(asyncio.ensure_future(self._tell_parent(False)))

    async def _tell_parent(self, waiting: bool) -> None:
        parent = self.args.get("parent")
        if parent is not None:
            await workflow.get_external_workflow_handle(parent["workflow_id"]).signal(
                "child", {"path": parent["path"], "waiting": waiting})
        self.notes = {note for note in self.notes if not note.done()}

    # ---- activities ------------------------------------------------------------------------
    async def activity(self, name: str, req: dict[str, Any], node: Mapping[str, Any] | None = None,
                       local: bool = True) -> dict[str, Any]:
        """Run activity ``name`` (counted as work under way); a failure for good comes back
        as ``{"status": "failed", "error"}``."""
        self.busy += 1
        try:
            if local:
                result: dict[str, Any] = await workflow.execute_local_activity(
                    name, req, start_to_close_timeout=LOCAL_TIMEOUT,
                    retry_policy=_retry_policy((node or {}).get("retry")))
            else:
                assert node is not None
                timeout = node.get("timeout_s")
                result = await workflow.execute_activity(
                    name, req,
                    start_to_close_timeout=timedelta(
                        seconds=(timeout + 30 if timeout else self.args["node_timeout_s"])),
                    heartbeat_timeout=timedelta(seconds=self.args["heartbeat_s"]),
                    retry_policy=_retry_policy(node.get("retry")))
            return result
        except ActivityError as exc:
            return {"status": "failed", "error": _failure(exc), "records": []}
        finally:
            self.busy -= 1

    async def wait_answer(self, path: str, suspension: dict[str, Any]
                          ) -> tuple[Any, str | None, bool]:
        """Wait for the answer to ``path`` (or its expiry); return the data, who gave it and
        whether the wait expired. The answer's work unit (see :meth:`resume`) is handed to
        the caller's next activity, so the run never looks idle in between."""
        self.waiting[path] = suspension
        expires = suspension.get("expires")
        timeout = None
        if expires is not None:
            timeout = timedelta(seconds=max(expires - workflow.now().timestamp(), 0.001))
        try:
            await workflow.wait_condition(lambda: path in self.answers, timeout=timeout)
        except TimeoutError:
            self.waiting.pop(path, None)
            self._unmark()
            data = (suspension.get("default") if suspension.get("on_timeout") == "default"
                    else {EXPIRED: True})
            return data, None, True
        self.busy -= 1
        data, by = self.answers.pop(path)
        return data, by, False


class _Graph:
    """One graph of the run (the root, or a body's sub-workflow under ``prefix``)."""

    def __init__(self, run: FmLabRun, graph: Graph, inputs: dict[str, Any], prefix: str,
                 policy: str | None = None) -> None:
        self.run = run
        self.graph = graph
        self.inputs = inputs
        self.prefix = prefix
        self.policy = policy
        self.state: dict[str, Any] = dict(graph["initial_state"])
        self.status: dict[str, str] = dict.fromkeys(graph["nodes"], "pending")
        self.view: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, Any] = {}  # rendered configs (output nodes' names)
        self.unresolved = dict(graph["incoming"])
        self.live = dict.fromkeys(graph["nodes"], 0)
        self.ready: deque[str] = deque()
        self.finished: deque[tuple[str, dict[str, Any]]] = deque()
        self.wake = asyncio.Event()
        self.outputs: Any = None
        self.error: dict[str, Any] | None = None
        self.status_ = "running"

    def request(self, node_id: str, path: str, **extra: Any) -> dict[str, Any]:
        """What an activity needs to work on ``node_id`` of this graph."""
        req = {"run": self.run.args["run"], "spec": self.graph["spec"],
               "hash": self.graph["hash"], "prefix": self.prefix,
               "graph_inputs": self.inputs, "state": self.state, "view": self.view,
               "node_id": node_id, "path": path, "policy": self.policy,
               "steps": {k: v for k, v in self.run.steps.items() if k.startswith(path)}}
        req.update(extra)
        return req

    # ---- the walk --------------------------------------------------------------------------
    async def execute(self) -> str:
        """Run the graph; returns succeeded or failed (cancellation propagates)."""
        for node_id in self.graph["entry"]:
            self.status[node_id] = "ready"
            self.ready.append(node_id)
        running: dict[str, asyncio.Task[None]] = {}
        limit = self.graph["max_concurrency"]
        try:
            while True:
                while self.ready and (limit is None or len(running) < limit):
                    node_id = self.ready.popleft()
                    self.status[node_id] = "running"
                    running[node_id] = asyncio.ensure_future(self._execute(node_id))
                if not running:
                    break
                await self.wake.wait()
                self.wake.clear()
                batch = list(self.finished)
                self.finished.clear()
                for node_id, result in batch:
                    del running[node_id]
                    if not self._done(node_id, result):
                        self.status_ = "failed"
                        self.error = {"node": node_id, **(result.get("error") or {})}
                        if self.prefix:
                            self.error["path"] = self.prefix + node_id
                        return self.status_
                for node_id, result in batch:
                    if result["status"] == "succeeded":
                        self._resolve(node_id, result.get("live"))
        finally:
            for task in running.values():
                task.cancel()
            if running:
                await asyncio.gather(*running.values(), return_exceptions=True)
        finished = await self.run.activity("fm_lab.finish", self.request(
            "", "", status=self.status, configs=self.configs))
        if "error" in finished:
            self.status_, self.error = "failed", finished["error"]
        else:
            self.status_, self.outputs = "succeeded", finished["outputs"]
        return self.status_

    async def _execute(self, node_id: str) -> None:
        inputs = {p: self.view[p]["output"] for p in self._predecessors(node_id)}
        try:
            result = await _Node(self, node_id, self.prefix + node_id, inputs).execute()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the walk's own fault: the run fails, it does not hang
            result = {"status": "failed", "records": [], "error": {
                "kind": "system", "domain": "temporal", "retryable": False,
                "message": str(exc), "type": type(exc).__name__}}
        self.finished.append((node_id, result))
        self.wake.set()

    def _predecessors(self, node_id: str) -> list[str]:
        found = []
        for source, edges in self.graph["outgoing"].items():
            if any(e["target"] == node_id for e in edges) and self.status[source] == "succeeded":
                found.append(source)
        return found

    def _done(self, node_id: str, result: dict[str, Any]) -> bool:
        """Take a finished node's result into the view; False when it failed."""
        status = result["status"]
        self.status[node_id] = status
        if result.get("input") is not None:
            self.configs[node_id] = result["input"]
        if status != "succeeded":
            return False
        if result.get("edge_error"):
            result["status"], result["error"] = "failed", result["edge_error"]
            self.status[node_id] = "failed"
            return False
        self.view[node_id] = {"output": result.get("output"), "status": "succeeded"}
        if result.get("state_patch"):
            self.state.update(result["state_patch"])
        return True

    def _resolve(self, node_id: str, live: list[bool] | None) -> None:
        """Resolve ``node_id``'s outgoing edges (``live``: which are taken; None: all); a
        target whose edges are all resolved becomes ready, or is skipped if none was taken."""
        edges = self.graph["outgoing"][node_id]
        for index, edge in enumerate(edges):
            target = edge["target"]
            if live is None or live[index]:
                self.live[target] += 1
            self.unresolved[target] -= 1
            if self.unresolved[target] == 0 and self.status[target] == "pending":
                if self.live[target]:
                    self.status[target] = "ready"
                    self.ready.append(target)
                else:
                    self._skip(target)

    def _skip(self, node_id: str) -> None:
        self.status[node_id] = "skipped"
        self.view[node_id] = {"output": None, "status": "skipped"}
        now = workflow.now().timestamp()
        self.run.record({"k": "node", "node": self.prefix + node_id,
                         "type": self.graph["nodes"][node_id]["type"], "status": "skipped",
                         "attempts": 0, "input": None, "output": None, "error": None,
                         "state_patch": None, "started": now, "ended": now})
        self._resolve(node_id, [False] * len(self.graph["outgoing"][node_id]))


class _Node:
    """One execution of a node of a graph (or of a body at ``path``)."""

    def __init__(self, graph: _Graph, node_id: str, path: str, inputs: dict[str, Any],
                 body: dict[str, Any] | None = None, scope: dict[str, Any] | None = None
                 ) -> None:
        self.graph = graph
        self.run = graph.run
        self.node_id = node_id
        self.path = path
        self.inputs = inputs
        self.body = body
        self.scope = scope or {}
        self.spec = body if body is not None else graph.graph["nodes"][node_id]
        self.type = str(self.spec["type"])

    def request(self, **extra: Any) -> dict[str, Any]:
        return self.graph.request(self.node_id, self.path, inputs=self.inputs, body=self.body,
                                  scope=self.scope, **extra)

    async def execute(self) -> dict[str, Any]:
        if self.type in ("sleep", "sleep_until", "foreach", "parallel", "subflow"):
            return await self._in_workflow()
        return await self._activity()

    async def _activity(self) -> dict[str, Any]:
        """The node as an activity; a waiting node waits for its answer and runs again with
        it (the answer is recorded first, as the engine does)."""
        local = self.type in LOCAL_TYPES
        resume: dict[str, Any] = {}
        while True:
            result = await self.run.activity("fm_lab.node", self.request(resume=resume),
                                             self.spec, local=local)
            for record in result.get("records", []):
                self.run.record(record)
            suspension = result.get("suspension")
            if result["status"] != "suspended" or suspension is None:
                return result
            path = suspension["path"]
            data, by, expired = await self.run.wait_answer(path, suspension)
            record = {"k": "resume", "path": path, "data": data,
                      "at": workflow.now().timestamp()}
            if by is not None:
                record["by"] = by
            if expired:
                record["expired"] = True
            self.run.record(record)
            resume = {**resume, path: data}

    async def _in_workflow(self) -> dict[str, Any]:
        """Timers and fan-outs: prepared by an activity, walked here, recorded as a node."""
        started = workflow.now().timestamp()
        prepared = await self.run.activity("fm_lab.prepare", self.request())
        if "error" in prepared:
            return self._recorded(started, "failed", error=prepared["error"])
        output: Any
        try:
            if self.type in ("sleep", "sleep_until"):
                output = await self._sleep(prepared)
            elif self.type == "foreach":
                output = await self._foreach(prepared)
            elif self.type == "parallel":
                output = await self._parallel(prepared)
            else:
                output = await self._subflow(prepared)
        except _BodyFailed as failed:
            return self._recorded(started, "failed", error=failed.error,
                                  config=prepared.get("input"))
        result = self._recorded(started, "succeeded", output=output,
                                config=prepared.get("input"))
        if self.body is None and any(e["condition"] or e["handle"]
                                     for e in self.graph.graph["outgoing"][self.node_id]):
            live = await self.run.activity("fm_lab.finish", self.graph.request(
                self.node_id, self.path, edges_of=self.node_id, output=output))
            if "error" in live:
                result["edge_error"] = live["error"]
            else:
                result["live"] = live["live"]
        return result

    def _recorded(self, started: float, status: str, output: Any = None,
                  error: dict[str, Any] | None = None, config: Any = None) -> dict[str, Any]:
        self.run.record({"k": "node", "node": self.path, "type": self.type, "status": status,
                         "attempts": 1, "input": config, "output": output, "error": error,
                         "state_patch": None, "started": started,
                         "ended": workflow.now().timestamp(),
                         "trace": self.run.args["run"]["trace_id"], "entity": self.node_id})
        return {"status": status, "output": output, "error": error, "input": config}

    async def _sleep(self, prepared: dict[str, Any]) -> dict[str, Any]:
        if self.type == "sleep":
            seconds = float(prepared["seconds"])
            output: dict[str, Any] = {"slept_s": seconds}
        else:
            seconds = float(prepared["until"]) - workflow.now().timestamp()
            output = {"until": _iso(float(prepared["until"]))}
        if seconds > 0:
            self.run.busy += 1
            try:
                await workflow.sleep(timedelta(seconds=seconds))
            finally:
                self.run.busy -= 1
        return output

    async def _body(self, body: dict[str, Any], key: str, inputs: dict[str, Any],
                    scope: dict[str, Any]) -> Any:
        """Run a body at ``path + key``; returns its output or raises :class:`_BodyFailed`."""
        path = self.path + key
        if "node" in body:
            result = await _Node(self.graph, self.node_id, path, inputs, body=body["node"],
                                 scope=scope).execute()
        else:
            nested = _Graph(self.run, body["graph"], inputs, path + "/", body.get("policy"))
            started = workflow.now().timestamp()
            status = await nested.execute()
            self.run.record({"k": "node", "node": path, "type": "workflow", "status": status,
                             "attempts": 1, "input": None, "output": nested.outputs,
                             "error": nested.error, "state_patch": None, "started": started,
                             "ended": workflow.now().timestamp(),
                             "entity": path.rsplit("/", 1)[-1]})
            result = {"status": status, "output": nested.outputs, "error": nested.error}
        if result["status"] != "succeeded":
            error = dict(result.get("error") or {})
            message = f"{error.get('path', path)}: {error.get('message', result['status'])}"
            raise _BodyFailed({**error, "message": message, "retryable": False})
        return result.get("output")

    async def _foreach(self, prepared: dict[str, Any]) -> dict[str, Any]:
        items: list[Any] = prepared["items"]
        body = prepared["body"]
        per_item = body.get("inputs")
        policy = prepared["on_item_error"]
        results: list[Any] = [None] * len(items)
        ok = [False] * len(items)
        errors: list[dict[str, Any]] = []
        indexes = iter(range(len(items)))

        async def worker() -> None:
            for index in indexes:
                item = {**prepared["extra"], "item": items[index], "index": index}
                inputs = per_item[index] if per_item is not None else item
                try:
                    results[index] = await self._body(body, f"[{index}]", inputs, item)
                    ok[index] = True
                except _BodyFailed as failed:
                    if policy == "fail":
                        raise
                    errors.append({"index": index, "error": failed.error["message"],
                                   "kind": failed.error.get("kind", "user")})

        await _all([worker() for _ in range(min(prepared["concurrency"], len(items)))])
        kept = ([r for r, done in zip(results, ok, strict=True) if done] if policy == "skip"
                else results)
        errors.sort(key=lambda e: e["index"])
        return {"results": kept, "errors": errors, "succeeded": sum(ok), "failed": len(errors)}

    async def _parallel(self, prepared: dict[str, Any]) -> dict[str, Any]:
        branches: dict[str, dict[str, Any]] = prepared["branches"]
        collect = prepared["on_error"] == "collect"

        async def branch(name: str, body: dict[str, Any]) -> Any:
            inputs = body["inputs"][0] if body.get("inputs") else self.inputs
            try:
                return await self._body(body, f".{name}", inputs, {"branch": name})
            except _BodyFailed as failed:
                if not collect:
                    raise
                return {"error": failed.error["message"], "kind": failed.error.get("kind")}

        names = list(branches)
        outputs = await _all([branch(n, branches[n]) for n in names])
        return dict(zip(names, outputs, strict=True))

    async def _subflow(self, prepared: dict[str, Any]) -> Any:
        child = dict(prepared["child"])
        run = self.run.args
        child.update(heartbeat_s=run["heartbeat_s"],
                     node_timeout_s=run["node_timeout_s"],
                     parent={"workflow_id": workflow.info().workflow_id, "path": self.path})
        self.run.busy += 1
        try:
            result = await workflow.execute_child_workflow(
                "fm_lab.run", child, id=f"fm_lab-{child['run']['run_id']}",
                task_queue=workflow.info().task_queue)
        except ChildWorkflowError as exc:
            raise _BodyFailed(_failure(exc)) from None
        finally:
            if self.path in self.run.children_waiting:
                self.run.children_waiting.discard(self.path)
            else:
                self.run.busy -= 1
        if result["status"] != "succeeded":
            error = dict(result.get("error") or {})
            raise _BodyFailed({**error, "retryable": False, "message": (
                f"child run {child['run']['run_id']} {result['status']} at node "
                f"{error.get('node')!r}: {error.get('message', '')}")})
        return result["outputs"]


class _BodyFailed(Exception):
    """A body (item, branch, child run) failed with ``error``."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


async def _all(work: list[Any]) -> list[Any]:
    """Await every coroutine in ``work`` concurrently; the first failure cancels the rest."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _iso(stamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC).isoformat()


__all__ = ["LOCAL_TYPES", "FmLabRun"]
