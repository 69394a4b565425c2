"""One node's execution, step by step, and its checkpoint.

:func:`execute_node` opens the node's span and runs :func:`_execute`:

1. :func:`_cache_lookup`: with a cache, render the config and look the execution's key up;
   a hit ends here (:func:`_cached`).
2. Attempts, until one succeeds, suspends or fails for good: :func:`_config` renders the
   config (or takes the static one), :func:`_attempt` runs the node once under its timeout,
   a failure is classified (``engine.errors.classify``) and :func:`_should_retry` decides on
   another attempt (a retried failure becomes an attempt span, :func:`_attempt_span`).
3. Each ending builds its :class:`Outcome` (by keyword).

:func:`record_outcome` then journals the outcome: :func:`node_record` (and
:func:`suspend_record` for a suspension) build the records of :mod:`fm_lab.store.records`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fm_lab.engine.cache import cache_key
from fm_lab.engine.context import NodeRunContext
from fm_lab.engine.errors import classify
from fm_lab.engine.templating import render_config
from fm_lab.exceptions import Suspended
from fm_lab.spec.models import RetryPolicy
from fm_lab.store.codec import NotSerialisableError
from fm_lab.tracing import otel
from fm_lab.tracing.spans import Span, SpanContext, activate, current, deactivate, new_span_id

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from pydantic import BaseModel

    from fm_lab.engine.cache import CacheHit, NodeCache
    from fm_lab.engine.runner import Runner
    from fm_lab.engine.session import RunSession
    from fm_lab.nodes.base import NodeType
    from fm_lab.spec.models import Node
    from fm_lab.store.records import NodeRecord, SuspendRecord
    from fm_lab.tracing.spans import SpanSink

_NO_RETRY = RetryPolicy()

Rendered = tuple["BaseModel", Any]
"""A node's config for one execution, and its rendered form (None when static)."""


@dataclass(slots=True, kw_only=True)
class Outcome:
    """How one node execution ended (journaled as a :class:`~fm_lab.store.records.NodeRecord`
    by :func:`record_outcome`)."""

    path: str
    status: str  # succeeded | failed | suspended
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    started: float = 0.0
    ended: float = 0.0
    state_patch: dict[str, Any] | None = None
    input: Any = None  # the rendered config (None when static)
    suspension: Suspended | None = field(default=None)
    span_id: str | None = None
    parent_span_id: str | None = None
    events: list[dict[str, Any]] | None = None
    spans: list[dict[str, Any]] = field(default_factory=list)  # span records made inside
    cache_key: str | None = None
    cached_from: dict[str, str] | None = None


async def execute_node(
    runner: Runner,
    node: Node,
    node_type: type[NodeType],
    static_config: BaseModel | None,
    scope: dict[str, Any],
    inputs: dict[str, Any],
    path: str,
) -> Outcome:
    """Run one node inside its span, with its retry policy and timeout; never raises (but for
    cancellation). Spans opened inside are kept on the outcome, journaled with its checkpoint."""
    parent = current()
    span_id = new_span_id()
    spans: list[dict[str, Any]] = []
    token = activate(_node_span(parent, span_id, path, spans.append))
    try:
        with _otel_context(parent, span_id):
            outcome = await _execute(runner, node, node_type, static_config, scope, inputs, path)
    finally:
        deactivate(token)
    outcome.span_id = span_id
    outcome.parent_span_id = parent.span_id if parent is not None else None
    outcome.spans = spans
    return outcome


def _node_span(parent: SpanContext | None, span_id: str, path: str,
               sink: SpanSink) -> SpanContext | None:
    """The node's span context under ``parent`` (None outside a traced run)."""
    if parent is None:
        return None
    return SpanContext(parent.trace_id, span_id, parent.run_id, sink, parent.workflow_id, path,
                       parent.agent, parent.resource_id)


def _otel_context(parent: SpanContext | None, span_id: str) -> AbstractContextManager[Any]:
    """The node's OpenTelemetry context when OpenTelemetry export is on."""
    if otel.enabled() and parent is not None:
        return otel.node_context(parent.trace_id, span_id)
    return contextlib.nullcontext()


async def _execute(
    runner: Runner,
    node: Node,
    node_type: type[NodeType],
    static_config: BaseModel | None,
    scope: dict[str, Any],
    inputs: dict[str, Any],
    path: str,
) -> Outcome:
    """The cache lookup, then attempts until one succeeds, suspends or fails for good."""
    started = time.time()
    cache = runner.session.cache
    key: str | None = None
    first: Rendered | None = None  # the config rendered for the cache lookup
    if cache is not None and node.cache and node_type.cacheable:
        key, first, hit = _cache_lookup(cache, node, node_type, static_config, scope, inputs,
                                        path)
        if hit is not None:
            return _cached(path, started, key, first, hit)
    policy = node.retry or _NO_RETRY
    resume_schema = _resume_schema(node_type)
    rendered: Any = None  # kept from the last attempt whose config rendered
    attempt = 0
    while True:
        attempt += 1
        ctx = NodeRunContext(runner, node.id, attempt, path, resume_schema)
        try:
            if first is not None and attempt == 1:
                config, rendered = first
            else:
                config, rendered = _config(node, node_type, static_config, scope)
            output = await _attempt(node, node_type, config, ctx, inputs)
        except asyncio.CancelledError:
            raise
        except Suspended as suspension:
            return Outcome(path=path, status="suspended", attempts=attempt, started=started,
                           ended=time.time(), input=rendered, suspension=suspension)
        except Exception as exc:
            error = classify(exc, node.type)
            if _should_retry(policy, attempt, error, runner.session.abort.is_set()):
                _attempt_span(path, attempt, error)
                await asyncio.sleep(policy.delay(attempt))
                continue
            error["attempts"] = attempt
            return Outcome(path=path, status="failed", error=error, attempts=attempt,
                           started=started, ended=time.time(), input=rendered)
        return Outcome(path=path, status="succeeded", output=output, attempts=attempt,
                       started=started, ended=time.time(), state_patch=ctx.state_patch,
                       input=rendered, events=ctx.events, cache_key=key)


def _cache_lookup(
    cache: NodeCache,
    node: Node,
    node_type: type[NodeType],
    static_config: BaseModel | None,
    scope: dict[str, Any],
    inputs: dict[str, Any],
    path: str,
) -> tuple[str | None, Rendered | None, CacheHit | None]:
    """The execution's cache key, the config rendered for it (reused by the first attempt)
    and the stored result, if any. A config that does not render has no key (the first
    attempt reports the error)."""
    try:
        first = _config(node, node_type, static_config, scope)
    except Exception:
        return None, None, None
    key = cache_key(node, node_type, first[0], first[1], inputs)
    return key, first, cache.get(key, path) if key is not None else None


def _cached(path: str, started: float, key: str | None, first: Rendered | None,
            hit: CacheHit) -> Outcome:
    """The outcome of an execution answered from the cache."""
    return Outcome(path=path, status="succeeded", output=hit.output, started=started,
                   ended=time.time(), state_patch=hit.state_patch,
                   input=first[1] if first is not None else None, cache_key=key,
                   cached_from={"run_id": hit.run_id, "path": hit.path})


def _config(node: Node, node_type: type[NodeType], static_config: BaseModel | None,
            scope: dict[str, Any]) -> Rendered:
    """The node's config for this execution, and its rendered form (None when static)."""
    if static_config is not None:
        return static_config, None
    rendered = render_config(node.config, scope, node_type.raw_fields)
    return node_type.Config.model_validate(rendered), rendered


async def _attempt(node: Node, node_type: type[NodeType], config: BaseModel,
                   ctx: NodeRunContext, inputs: dict[str, Any]) -> Any:
    """Run the node once; an async node is bounded by ``node.timeout_s``."""
    result = node_type(config).run(ctx, inputs)
    if inspect.isawaitable(result):
        if node.timeout_s is not None:
            return await asyncio.wait_for(result, node.timeout_s)
        return await result
    return result


def _should_retry(policy: RetryPolicy, attempt: int, error: dict[str, Any],
                  aborted: bool) -> bool:
    """Whether a failed attempt (``error`` as classified) is tried again: attempts left, a
    retryable error of a kind the policy retries, and the run not aborting."""
    return (
        attempt < policy.max_attempts
        and error["retryable"]
        and error["kind"] in policy.retry_on
        and not aborted
    )


def _attempt_span(path: str, attempt: int, error: dict[str, Any]) -> None:
    """A failed attempt that will be retried becomes a span under the node's."""
    attempt_span = Span(
        current(),
        f"{path} attempt {attempt}",
        "attempt",
        attributes={"attempt": attempt, "entity_id": path},
    )
    attempt_span.end("error", {k: error[k] for k in ("kind", "type", "message")})


_RESUME_SCHEMAS: dict[type[Any], dict[str, Any] | None] = {}


def _resume_schema(node_type: type[NodeType]) -> dict[str, Any] | None:
    """The JSON schema resume data must match (computed once per node type)."""
    if node_type not in _RESUME_SCHEMAS:
        schema = getattr(node_type, "resume_schema", None)
        if schema is not None and not isinstance(schema, dict):
            schema = schema.model_json_schema()
        _RESUME_SCHEMAS[node_type] = schema
    return _RESUME_SCHEMAS[node_type]


# ---- the checkpoint ------------------------------------------------------------------------
def record_outcome(
    session: RunSession, outcome: Outcome, node_type: str, node_id: str
) -> NodeRecord:
    """Journal a finished execution (its spans, its suspension) and tell listeners; returns
    the node record. An output that cannot be stored turns the outcome into a failure."""
    record = node_record(outcome, node_type, node_id, session.trace_id)
    recorder = session.recorder
    for span_record in outcome.spans:  # spans opened in the node: journaled with its checkpoint
        recorder.append(span_record)
    try:
        if outcome.status == "suspended":
            assert outcome.suspension is not None
            record["leaf"] = outcome.suspension.leaf
            if outcome.suspension.leaf:
                recorder.append(suspend_record(outcome.suspension, node_id, outcome.ended))
        recorder.append(record)
    except NotSerialisableError as exc:  # the output or the suspend payload
        _fail_unstorable(outcome, record, classify(exc, node_type))
        recorder.append(record)
    if session.on_event is None:  # nobody listens (the hot path of big foreach nodes)
        return record
    waits = outcome.suspension
    session.emit_node(outcome.path, node_id,
                      "cached" if outcome.cached_from is not None else outcome.status,
                      (outcome.ended - outcome.started) * 1000, outcome.error,
                      output=record["output"],
                      **({"label": waits.label, "payload": waits.payload, "leaf": waits.leaf}
                         if waits is not None else {}))
    return record


def node_record(outcome: Outcome, node_type: str, node_id: str, trace_id: str) -> NodeRecord:
    """The journal record of a finished execution (without ``leaf``, set for suspensions)."""
    record: NodeRecord = {
        "k": "node",
        "node": outcome.path,
        "type": node_type,
        "status": outcome.status,
        "attempts": outcome.attempts,
        "input": outcome.input,
        "output": outcome.output,
        "error": outcome.error,
        "state_patch": outcome.state_patch,
        "started": outcome.started,
        "ended": outcome.ended,
        "span": outcome.span_id,
        "pspan": outcome.parent_span_id,
        "trace": trace_id,
        "entity": node_id,
        "events": outcome.events,
    }
    if outcome.cache_key is not None:
        record["cache_key"] = outcome.cache_key
    if outcome.cached_from is not None:
        record["cached_from"] = outcome.cached_from
    return record


def suspend_record(suspension: Suspended, node_id: str, since: float) -> SuspendRecord:
    """The journal record of a (leaf) suspension, written before its node's record."""
    record: SuspendRecord = {
        "k": "suspend",
        "path": suspension.path,
        "node": node_id,
        "label": suspension.label,
        "payload": suspension.payload,
        "schema": suspension.resume_schema,
        "since": since,
        "expires": suspension.expires_at,
        "on_timeout": suspension.on_timeout,
        "default": suspension.default,
    }
    if suspension.assignees:
        record["assignees"] = suspension.assignees
    if suspension.roles:
        record["roles"] = suspension.roles
    return record


def _fail_unstorable(outcome: Outcome, record: NodeRecord, error: dict[str, Any]) -> None:
    """An output (or suspend payload) JSON cannot hold: the execution failed after all."""
    outcome.status, outcome.output, outcome.state_patch = "failed", None, None
    outcome.error = error
    record.pop("leaf", None)
    record["status"] = "failed"
    record["output"] = None
    record["error"] = error
    record["state_patch"] = None


__all__ = ["Outcome", "execute_node", "node_record", "record_outcome", "suspend_record"]
