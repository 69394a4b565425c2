"""Nested execution: a body (one node, or a sub-workflow) at a path inside the run, and child
runs of other workflows. Both checkpoint so a finished part is never run again."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.engine.execute import Outcome, execute_node, record_outcome
from fm_lab.engine.runner import Runner
from fm_lab.engine.templating import has_templates
from fm_lab.exceptions import NodeError, Suspended
from fm_lab.security.policy import Policy, using_policy
from fm_lab.spec.models import Node, Workflow
from fm_lab.store.errors import RunNotFoundError
from fm_lab.tracing.spans import activate, current, deactivate, new_span_id

if TYPE_CHECKING:
    from pydantic import BaseModel

    from fm_lab.engine.plan import Plan
    from fm_lab.nodes.base import NodeType


def _cached(runner: Runner, kind: str, spec: Any, build: Any) -> Any:
    """What ``build`` makes of ``spec``, once per run. The cache keeps ``spec`` alive, so its
    ``id()`` cannot be reused by another body while the entry exists."""
    cache = runner.session.body_cache
    key = (kind, spec if isinstance(spec, str) else id(spec))
    entry = cache.get(key)
    if entry is None or entry[0] is not spec:
        entry = cache[key] = (spec, build())
    return entry[1]


async def run_body(
    runner: Runner,
    path: str,
    body: Mapping[str, Any],
    scope: Mapping[str, Any],
    inputs: Mapping[str, Any],
    default_id: str = "body",
) -> Any:
    """Run ``body`` at ``path``; a committed success is returned as it was. Returns (or
    raises) once the body's checkpoint is durable: a foreach worker takes its next item only
    then, so a crash re-runs at most one finished item per worker (those of the last group
    commit), and bodies finishing together share one write and fsync."""
    session = runner.session
    record = session.committed.get(path)
    if record is not None:
        if record["status"] == "succeeded":  # progress counts it; streams do not repeat it
            session.emit_node(path, _owner(runner, path), "succeeded", restored=True)
            return record["output"]
        if (
            record["status"] == "suspended"
            and record.get("leaf", True)
            and not session.has_resume(path)
        ):
            raise Suspended(path, leaf=False)
    if "node" in body:
        return await _run_node(runner, path, body["node"], scope, inputs, default_id)
    if "workflow" in body:
        return await _run_graph(runner, path, body["workflow"], dict(inputs))
    raise NodeError("a body is {'node': {...}} or {'workflow': ...}", kind="validation")


def _owner(runner: Runner, path: str) -> str:
    """The id of the node a body path belongs to: ``loop`` for ``loop[3]`` or ``par.a``."""
    local = path[len(runner.prefix):]
    return re.split(r"[\[.]", local, maxsplit=1)[0]


async def _run_node(
    runner: Runner,
    path: str,
    spec: Mapping[str, Any],
    scope: Mapping[str, Any],
    inputs: Mapping[str, Any],
    default_id: str,
) -> Any:
    def build() -> tuple[Node, type[NodeType], BaseModel | None]:
        node = Node(
            id=str(spec.get("id") or default_id), **{k: v for k, v in spec.items() if k != "id"}
        )
        node_type = runner.session.registry.lookup(node.type)
        if node_type is None:
            raise NodeError(f"unknown node type {node.type!r} in body", kind="validation")
        templated = has_templates(
            {k: v for k, v in node.config.items() if k not in node_type.raw_fields}
        )
        static = None if templated else node_type.Config.model_validate(node.config)
        return node, node_type, static

    node, node_type, static = _cached(runner, "node", spec, build)
    full_scope = {**runner.scope(), **scope}
    outcome = await execute_node(runner, node, node_type, static, full_scope, dict(inputs), path)
    record_outcome(runner.session, outcome, node.type, node.id)
    if outcome.status == "succeeded" and outcome.state_patch:
        runner.state.update(outcome.state_patch)  # a body node shares its graph's state
    await runner.session.recorder.durable()  # see run_body
    return _result(outcome.status, outcome.output, outcome.error, path)


async def _run_graph(runner: Runner, path: str, reference: Any, inputs: dict[str, Any]) -> Any:
    from fm_lab.engine.plan import Plan

    session = runner.session
    policy = stored_policy(reference, session.store)  # once: a query for a stored id
    with using_policy(policy):
        plan: Plan = _cached(
            runner, "graph", reference,
            lambda: Plan(resolve_workflow(reference, session.store), session.registry),
        )
    nested = Runner(plan, session, plan.prepare_inputs(inputs), prefix=path + "/", root=False)
    started = time.time()
    parent = current()
    span_id = new_span_id()
    token = activate(parent.child(span_id, node_id=path) if parent is not None else None)
    try:
        with using_policy(policy):
            status = await nested.run_graph()
    finally:
        deactivate(token)
    outcome = Outcome(path=path, status=status, output=nested.outputs, error=nested.error,
                      attempts=1, started=started, ended=time.time(), span_id=span_id,
                      parent_span_id=parent.span_id if parent else None)
    if status == "suspended":
        outcome.suspension = Suspended(path, leaf=False)
    record_outcome(session, outcome, "workflow", path.rsplit("/", 1)[-1])
    await session.recorder.durable()  # see run_body
    return _result(status, nested.outputs, nested.error, path)


def _result(status: str, output: Any, error: dict[str, Any] | None, path: str) -> Any:
    if status == "succeeded":
        return output
    if status == "suspended":
        raise Suspended(path, leaf=False)
    err = error or {}
    raise NodeError(
        f"{err.get('path', path)}: {err.get('message', status)}",
        kind=err.get("kind", "system"),
        retryable=False,
        domain=err.get("domain"),
    )


def _stored_id(reference: Any) -> str | None:
    """The workflow id ``reference`` names in the store (None: inline, or a file)."""
    if isinstance(reference, Workflow | dict):
        return None
    text = str(reference)
    if Path(text).suffix in (".yaml", ".yml", ".json") or Path(text).exists():
        return None
    return text


def resolve_workflow(reference: Any, store: Any) -> Workflow:
    """A workflow from an inline dict, a file path, or a workflow id stored earlier."""
    if isinstance(reference, Workflow):
        return reference
    if isinstance(reference, dict):
        return Workflow.from_dict(reference)
    workflow_id = _stored_id(reference)
    if workflow_id is None:
        return Workflow.from_file(str(reference))
    return store.latest_workflow(workflow_id)  # type: ignore[no-any-return]


def stored_policy(reference: Any, store: Any) -> Policy | None:
    """``restricted`` when ``reference`` names a stored workflow whose newest version another
    identity saved (someone else's code must not run with this user's trust); None
    otherwise (the run's own policy applies)."""
    from fm_lab.identity import current_user
    from fm_lab.security.policy import resolve_policy

    workflow_id = _stored_id(reference)
    if workflow_id is None:
        return None
    versions = store.workflows(workflow_id)
    saved_by = versions["saved_by"].iloc[0] if not versions.empty else None
    user = current_user()
    if not isinstance(saved_by, str) or saved_by == user:
        return None
    return resolve_policy(saved_by=saved_by, user=user, store=store)


def child_run_id(run_id: str, path: str) -> str:
    """The id of the child run started at ``path``: the same on every resume."""
    return f"{run_id}.{hashlib.sha1(path.encode()).hexdigest()[:10]}"


async def run_child(runner: Runner, path: str, reference: Any, inputs: dict[str, Any]) -> Any:
    """Run (or continue) the child run for ``path`` and return its outputs."""
    from fm_lab.engine.api import aresume, arun

    session = runner.session
    child_id = child_run_id(session.run_id, path)
    common: dict[str, Any] = {
        "store": session.store,
        "request_context": session.request_context,
        "registry": session.registry,
    }
    session.store.recover_journals(child_id)  # a child left by a crash
    try:
        status = session.store.run_status(child_id)
    except RunNotFoundError:
        status = None
    if status is None:
        child = await arun(
            resolve_workflow(reference, session.store),
            inputs,
            run_id=child_id,
            parent_run_id=session.run_id,
            policy=stored_policy(reference, session.store),
            **common,
        )
    elif status == "succeeded":
        return session.store.load_run(child_id).outputs
    else:
        child = await aresume(child_id, **common)
    if child.status == "succeeded":
        return child.outputs
    if child.status == "suspended":
        raise Suspended(path, leaf=False, payload={"child_run_id": child_id})
    err = child.error or {}
    raise NodeError(
        f"child run {child_id} {child.status} at node {err.get('node')!r}: "
        f"{err.get('message', '')}",
        kind=err.get("kind", "system"),
        retryable=False,
    )
