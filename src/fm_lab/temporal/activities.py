"""The activities of an fm_lab run on Temporal: everything that does I/O or renders templates.

* :func:`node` runs one node through the engine's own step (:func:`fm_lab.engine.execute.
  execute_node`: rendering, the node's timeout, its span) and returns its checkpoint records;
  the node's retry policy is Temporal's (a retryable failure raises, the last one returns).
* :func:`prepare` renders what the workflow needs of a composite or timer node (items,
  branches, bodies, seconds) and writes a child run's start record.
* :func:`finish` renders a graph's outputs, or which edges of a node the workflow takes.
* :func:`store_records` ingests records into the fm_lab store, numbered by the workflow.

Each runs under the run's execution policy, never above the worker's (:func:`run_policy`).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, TypedDict, TypeVar, cast

from temporalio import activity
from temporalio.exceptions import ApplicationError

if TYPE_CHECKING:
    from fm_lab.engine.plan import Plan
    from fm_lab.engine.runner import Runner
    from fm_lab.nodes.base import NodeType
    from fm_lab.nodes.registry import NodeRegistry
    from fm_lab.security.policy import Mode, Policy
    from fm_lab.spec.models import Node, Workflow
    from fm_lab.store.base import RunStore
    from fm_lab.store.records import StoredNode

T = TypeVar("T")
CEILING_ENV: Final = "FM_LAB_POLICY"
_CEILING: list[Mode] = []  # the worker's --policy (else $FM_LAB_POLICY, else restricted)
_STORES: dict[str, RunStore] = {}
_PLANS: OrderedDict[tuple[str, Any], Plan] = OrderedDict()
_LOCK = threading.Lock()


class RunRef(TypedDict):
    """The run an activity works for: its id, the store it is kept in (a URL or a DuckDB
    file), its policy, trace and the workflow id; ``owner`` is the run's stored address."""

    run_id: str
    store: str
    policy: str
    trace_id: str
    workflow_id: str
    owner: str
    request_context: dict[str, Any]


# ---- the worker's side -------------------------------------------------------------------
def set_ceiling(mode: str | None) -> None:
    """The most this worker lets a run do (``trusted`` or ``restricted``)."""
    from fm_lab.security.policy import parse_mode

    _CEILING[:] = [parse_mode(mode, "--policy")] if mode else []


def ceiling() -> Mode:
    """The worker's policy ceiling: ``--policy``, else ``$FM_LAB_POLICY``, else restricted."""
    from fm_lab.security.policy import parse_mode

    if _CEILING:
        return _CEILING[0]
    env = os.environ.get(CEILING_ENV, "").strip()
    return parse_mode(env, CEILING_ENV) if env else "restricted"


def run_policy(mode: str) -> Policy:
    """The policy a run's activities run under: the run's, but no more than the worker's."""
    from fm_lab.security.policy import capped, parse_mode, policy

    return capped(policy(parse_mode(mode, "the run's policy"), "the run"), ceiling())


def open_run_store(locator: str) -> RunStore:
    """This worker's handle on the store at ``locator`` (opened once per process)."""
    with _LOCK:
        if locator not in _STORES:
            from fm_lab.store.urls import open_store

            _STORES[locator] = open_store(locator)
        return _STORES[locator]


def _plan(spec: dict[str, Any], content: str, registry: NodeRegistry, chosen: Policy) -> Plan:
    """The plan of ``spec`` whose content hash is ``content`` (validated once per worker,
    content and policy)."""
    from fm_lab.engine.plan import Plan
    from fm_lab.security.policy import using_policy
    from fm_lab.spec.models import Workflow

    key = (content, chosen.key)
    with _LOCK:
        found = _PLANS.get(key)
        if found is not None:
            _PLANS.move_to_end(key)
            return found
    with using_policy(chosen):
        plan = Plan.cached(Workflow.from_dict(spec), registry)
    with _LOCK:
        _PLANS[key] = plan
        while len(_PLANS) > 64:
            _PLANS.popitem(last=False)
    return plan


class _Context:
    """A request's run, rebuilt in the worker: its store, policy, plan, and a runner for the
    graph the node is in (the view of earlier nodes, the state, the inputs)."""

    def __init__(self, req: dict[str, Any]) -> None:
        from fm_lab.engine.runner import Runner
        from fm_lab.engine.session import RunSession
        from fm_lab.nodes.registry import default_registry

        run: RunRef = req["run"]
        self.req = req
        self.store = open_run_store(run["store"])
        self.policy = run_policy(req.get("policy") or run["policy"])
        self.registry = default_registry()
        self.plan = _plan(req["spec"], req["hash"], self.registry, self.policy)
        steps = req.get("steps") or {}
        self.session = RunSession(
            store=self.store, run_id=run["run_id"], journal=None, registry=self.registry,
            request_context=dict(run.get("request_context") or {}),
            resume=req.get("resume") or {}, steps=dict(steps), workflow_id=run["workflow_id"],
            trace=(run["trace_id"], None), policy=self.policy)
        self.runner: Runner = Runner(self.plan, self.session, dict(req.get("graph_inputs") or {}),
                                     prefix=req.get("prefix", ""), root=False)
        self.runner.state.update(req.get("state") or {})
        self.runner.view.update(req.get("view") or {})

    def node(self) -> tuple[Node, type[NodeType], Any]:
        """The node to run (of the plan, or a body's ``{type, config, ...}``), its type and
        its static config (None when templated)."""
        from fm_lab.engine.templating import has_templates
        from fm_lab.spec.models import Node

        body = self.req.get("body")
        node_id = self.req["node_id"]
        if body is None:
            node = self.plan.nodes[node_id]
            return node, self.plan.types[node_id], self.plan.static_config.get(node_id)
        node = Node(id=str(body.get("id") or node_id),
                    **{k: v for k, v in body.items() if k != "id"})
        node_type = self.registry.lookup(node.type)
        if node_type is None:
            raise ApplicationError(f"unknown node type {node.type!r} in a body",
                                   non_retryable=True)
        templated = has_templates(
            {k: v for k, v in node.config.items() if k not in node_type.raw_fields})
        return node, node_type, None if templated else node_type.Config.model_validate(
            node.config)

    def scope(self) -> dict[str, Any]:
        return {**self.runner.scope(), **(self.req.get("scope") or {})}

    def records(self) -> list[dict[str, Any]]:
        """The records the execution queued (the workflow numbers them)."""
        found = []
        for record in self.session.recorder.unflushed:
            plain = dict(record)
            plain.pop("seq", None)
            found.append(plain)
        return found


_ENGINE_LOOP: list[asyncio.AbstractEventLoop] = []


def engine_loop() -> asyncio.AbstractEventLoop:
    """This process's loop for fm_lab work, on its own thread: nodes (a slow import, a sync
    function, a model client) never hold up the worker's loop, its workflow tasks or its
    heartbeats; model clients stay on the one loop they first saw."""
    with _LOCK:
        if not _ENGINE_LOOP:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="fm_lab-temporal-engine",
                             daemon=True).start()
            _ENGINE_LOOP.append(loop)
        return _ENGINE_LOOP[0]


async def _on_engine_loop(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` run on :func:`engine_loop` (cancelled with the activity)."""
    future = asyncio.run_coroutine_threadsafe(work, engine_loop())
    try:
        return await asyncio.wrap_future(future)
    finally:
        future.cancel()


async def _heartbeating(work: Coroutine[Any, Any, T], engine: bool = True) -> T:
    """Await ``work`` (on the engine loop, or here: ``engine=False``) while heartbeating (a
    dead worker's activity is retried elsewhere once its heartbeat timeout passes)."""
    timeout = activity.info().heartbeat_timeout
    run = _on_engine_loop(work) if engine else work
    if not timeout:
        return await run

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(max(timeout.total_seconds() / 3, 0.05))

    beating = asyncio.ensure_future(beat())
    try:
        return await run
    finally:
        beating.cancel()


def _in_policy(ctx: _Context, fn: Callable[[], T]) -> T:
    from fm_lab.security.policy import using_policy

    with using_policy(ctx.policy):
        return fn()


# ---- node ----------------------------------------------------------------------------------
@activity.defn(name="fm_lab.node")
async def node(req: dict[str, Any]) -> dict[str, Any]:
    """Run one node (one attempt; Temporal retries) and return its outcome and records."""
    return await _heartbeating(_run_node(req))


async def _run_node(req: dict[str, Any]) -> dict[str, Any]:
    from fm_lab.engine.errors import classify
    from fm_lab.engine.execute import execute_node, record_outcome
    from fm_lab.security.policy import using_policy
    from fm_lab.tracing.spans import activate, deactivate

    ctx = _Context(req)
    spec, node_type, static = ctx.node()
    once = spec.model_copy(update={"retry": None})  # the retries are Temporal's
    attempt = activity.info().attempt if activity.in_activity() else 1
    token = activate(ctx.session.workflow_span)
    try:
        with using_policy(ctx.policy):
            outcome = await execute_node(ctx.runner, once, node_type, static, ctx.scope(),
                                         dict(req.get("inputs") or {}), req["path"])
    finally:
        deactivate(token)
    outcome.attempts = attempt
    if outcome.status == "failed" and _retry(spec, attempt, outcome.error or {}):
        error = outcome.error or {}
        raise ApplicationError(f"{req['path']}: {error.get('message')}", error,
                               type=str(error.get("kind")))
    if outcome.error is not None:
        outcome.error["attempts"] = attempt
    record_outcome(ctx.session, outcome, spec.type, spec.id)
    result: dict[str, Any] = {"status": outcome.status, "output": outcome.output,
                              "error": outcome.error, "state_patch": outcome.state_patch,
                              "input": outcome.input, "records": ctx.records(),
                              "live": None, "suspension": None}
    suspension = outcome.suspension
    if outcome.status == "suspended" and suspension is not None:
        result["suspension"] = {"path": suspension.path, "expires": suspension.expires_at,
                                "on_timeout": suspension.on_timeout,
                                "default": suspension.default, "label": suspension.label}
    if outcome.status == "succeeded" and req.get("body") is None:
        try:
            result["live"] = _in_policy(ctx, lambda: live_edges(
                ctx.runner, req["node_id"], node_type, outcome.output, outcome.state_patch))
        except Exception as exc:  # an edge condition that fails fails the run
            result["edge_error"] = classify(exc, "edge")
    return result


def _retry(spec: Node, attempt: int, error: dict[str, Any]) -> bool:
    """Whether the node's retry policy tries a failed attempt again (as the engine does)."""
    policy = spec.retry
    return (policy is not None and attempt < policy.max_attempts and bool(error.get("retryable"))
            and error.get("kind") in policy.retry_on)


def live_edges(runner: Runner, node_id: str, node_type: type[NodeType], output: Any,
               state_patch: dict[str, Any] | None) -> list[bool]:
    """Which outgoing edges of ``node_id`` (in the plan's order) are taken after it
    succeeded with ``output`` (its handles, then the edges' conditions)."""
    from fm_lab.engine.templating import render_template
    from fm_lab.exceptions import NodeError

    runner.view[node_id] = {"output": output, "status": "succeeded"}
    if state_patch:
        runner.state.update(state_patch)
    taken = node_type.taken_handles(output)
    live = []
    for edge in runner.plan.outgoing[node_id]:
        ok = edge.source_handle is None or taken is None or edge.source_handle in taken
        if ok and edge.condition is not None:
            try:
                ok = bool(render_template(edge.condition, runner.scope()))
            except Exception as exc:
                raise NodeError(f"the condition {edge.condition!r} of edge {edge.source} -> "
                                f"{edge.target} failed: {exc}", kind="validation",
                                retryable=False, domain="edge") from exc
        live.append(ok)
    return live


# ---- prepare -------------------------------------------------------------------------------
@activity.defn(name="fm_lab.prepare")
async def prepare(req: dict[str, Any]) -> dict[str, Any]:
    """Render a ``sleep``/``sleep_until``/``foreach``/``parallel``/``subflow`` node's config
    into what the workflow walks (an ``error`` when it does not render)."""
    return await _on_engine_loop(_prepared(req))


async def _prepared(req: dict[str, Any]) -> dict[str, Any]:
    from fm_lab.engine.errors import classify

    ctx = _Context(req)
    spec, node_type, static = ctx.node()
    try:
        return _in_policy(ctx, lambda: _prepare(ctx, spec, node_type, static))
    except Exception as exc:
        return {"error": {**classify(exc, spec.type), "attempts": 1}}


def _prepare(ctx: _Context, spec: Node, node_type: type[NodeType], static: Any
             ) -> dict[str, Any]:
    import datetime as dt

    from fm_lab.engine.templating import render_config

    rendered = None
    config = static
    if config is None:
        rendered = render_config(spec.config, ctx.scope(), node_type.raw_fields)
        config = node_type.Config.model_validate(rendered)
    kind = spec.type
    result: dict[str, Any] = {"input": rendered}
    if kind == "sleep":
        result["seconds"] = float(config.seconds)
    elif kind == "sleep_until":
        until = config.until
        if isinstance(until, dt.datetime):
            until = (until if until.tzinfo else until.replace(tzinfo=dt.UTC)).timestamp()
        result["until"] = float(until)
    elif kind == "foreach":
        items = list(config.items)
        extra = dict(config.inputs)
        result.update(items=items, concurrency=config.concurrency,
                      on_item_error=config.on_item_error, extra=extra)
        result["body"] = _body(ctx, config.spec(), [
            {**extra, "item": item, "index": index} for index, item in enumerate(items)])
    elif kind == "parallel":
        inputs = dict(ctx.req.get("inputs") or {})
        result["on_error"] = config.on_error
        result["branches"] = {name: _body(ctx, body.spec(), [inputs])
                              for name, body in config.branches.items()}
    elif kind == "subflow":
        result["child"] = _child(ctx, config.workflow, dict(config.inputs))
    else:
        raise ValueError(f"{kind!r} nodes are not prepared")
    return result


def _body(ctx: _Context, body: dict[str, Any], inputs: list[dict[str, Any]]
          ) -> dict[str, Any]:
    """A body as the workflow runs it: ``{"node": spec}``, or ``{"graph", "inputs",
    "policy"}`` for a sub-workflow (resolved, validated, its inputs prepared per item)."""
    from fm_lab.engine.bodies import resolve_workflow, stored_policy
    from fm_lab.security.policy import using_policy
    from fm_lab.temporal.graph import graph_of

    if "node" in body:
        return {"node": body["node"]}
    from fm_lab.engine.plan import Plan

    reference = body["workflow"]
    chosen = stored_policy(reference, ctx.store)
    with using_policy(chosen):
        plan = Plan(resolve_workflow(reference, ctx.store), ctx.registry)
    return {"graph": graph_of(plan), "inputs": [plan.prepare_inputs(i) for i in inputs],
            "policy": chosen.mode if chosen is not None else None}


def _child(ctx: _Context, reference: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """The input of a subflow's child workflow; its start record is stored here (once)."""
    from fm_lab.engine.bodies import child_run_id, resolve_workflow, stored_policy
    from fm_lab.engine.plan import Plan
    from fm_lab.security.policy import using_policy
    from fm_lab.store.errors import RunNotFoundError
    from fm_lab.temporal.graph import graph_of

    run: RunRef = ctx.req["run"]
    child_id = child_run_id(run["run_id"], ctx.req["path"])
    chosen = stored_policy(reference, ctx.store) or ctx.policy
    with using_policy(chosen):
        plan = Plan(resolve_workflow(reference, ctx.store), ctx.registry)
    prepared = plan.prepare_inputs(inputs)
    child_run: RunRef = {**run, "run_id": child_id, "policy": chosen.mode,
                         "workflow_id": plan.workflow.id}
    try:
        ctx.store.run_status(child_id)
    except RunNotFoundError:
        store_start(ctx.store, child_id, plan.workflow, prepared, parent=run["run_id"],
                    trace_id=run["trace_id"], policy=chosen.mode, owner=run["owner"])
    return {"run": child_run, "graph": graph_of(plan), "inputs": prepared, "seq": 1,
            "span": workflow_span_id(child_id)}


def store_start(store: RunStore, run_id: str, workflow: Workflow, inputs: dict[str, Any], *,
                parent: str | None, trace_id: str, policy: str, owner: str) -> None:
    """Store a run's start record (record 1), owned by the Temporal target ``owner``: the
    run's ``owner_host``, by which resumes and cancels find their way to Temporal."""
    from fm_lab.identity import current_user
    from fm_lab.store.duckdb_store import Store

    start = Store.start_record(run_id, workflow, inputs, parent)
    start["trace_id"] = trace_id
    start["by"] = current_user()
    start["policy"] = policy
    start["host"] = owner
    start["pid"] = 0
    start["seq"] = 1
    store.ingest(run_id, [start])


def workflow_span_id(run_id: str) -> str:
    """The id of a run's workflow span (as :class:`~fm_lab.engine.session.RunSession`'s)."""
    import hashlib

    return hashlib.sha1(run_id.encode()).hexdigest()[:16]


# ---- finish --------------------------------------------------------------------------------
@activity.defn(name="fm_lab.finish")
async def finish(req: dict[str, Any]) -> dict[str, Any]:
    """A finished graph's outputs (``{"outputs"}`` or ``{"error"}``); with ``edges_of``, which
    outgoing edges of that node are taken (``{"live"}``)."""
    return await _on_engine_loop(_finished(req))


async def _finished(req: dict[str, Any]) -> dict[str, Any]:
    from fm_lab.engine.errors import classify

    ctx = _Context(req)
    runner = ctx.runner
    runner.status.update(req.get("status") or {})
    if req.get("edges_of") is not None:
        node_id = str(req["edges_of"])
        try:
            return {"live": _in_policy(ctx, lambda: live_edges(
                runner, node_id, ctx.plan.types[node_id], req.get("output"), None))}
        except Exception as exc:
            return {"error": classify(exc, "edge")}
    configs = req.get("configs") or {}
    for node_id in runner.status:  # what _collect_outputs reads of results: the input
        runner.results[node_id] = cast("StoredNode", {"input": configs.get(node_id)})
    try:
        return {"outputs": _in_policy(ctx, runner._collect_outputs)}
    except Exception as exc:
        return {"error": {"node": None, **classify(exc, "outputs")}}


# ---- the store -----------------------------------------------------------------------------
@activity.defn(name="fm_lab.store")
async def store_records(req: dict[str, Any]) -> None:
    """Ingest ``records`` numbered from ``seq + 1`` (a retry stores nothing twice)."""
    run: RunRef = req["run"]
    store = open_run_store(run["store"])
    await _heartbeating(asyncio.to_thread(ingest, store, run["run_id"], int(req["seq"]),
                                          req["records"]), engine=False)


def ingest(store: RunStore, run_id: str, seq: int, records: list[dict[str, Any]]) -> None:
    """Store ``records`` (secrets masked) numbered from ``seq + 1``, in one transaction; a
    retry stores nothing twice."""
    from fm_lab.tracing.recorder import Recorder

    recorder = Recorder(store, run_id, None, seq, ingested_once=True)
    for record in records:
        recorder.append(record)
    recorder.flush(True)


ACTIVITIES: Final = (node, prepare, finish, store_records)

__all__ = ["ACTIVITIES", "RunRef", "ceiling", "finish", "live_edges", "node", "open_run_store",
           "prepare", "run_policy", "set_ceiling", "store_records"]
