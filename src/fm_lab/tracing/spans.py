"""Spans: workflow → node → agent → LLM → tool. The engine opens node spans; code inside a node
opens its own with :func:`span`, which nest under the current one and are journaled with the
node's checkpoint."""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

SpanSink = Callable[[dict[str, Any]], None]


def new_trace_id() -> str:
    return f"{random.getrandbits(128):032x}"


def new_span_id() -> str:
    return f"{random.getrandbits(64):016x}"


@dataclass(frozen=True, slots=True)
class SpanContext:
    """Where a new span goes: its trace, its parent (None: a root), the run (None outside
    runs) and what it belongs to."""

    trace_id: str
    span_id: str | None
    run_id: str | None
    sink: SpanSink
    workflow_id: str | None = None
    node_id: str | None = None
    agent: str | None = None
    resource_id: str | None = None

    def child(self, span_id: str, node_id: str | None = None,
              agent: str | None = None) -> SpanContext:
        """The context of a span opened under this one."""
        return SpanContext(self.trace_id, span_id, self.run_id, self.sink, self.workflow_id,
                           node_id if node_id is not None else self.node_id,
                           agent if agent is not None else self.agent, self.resource_id)


_CURRENT: ContextVar[SpanContext | None] = ContextVar("fm_lab_span", default=None)


def current() -> SpanContext | None:
    """The span context code is running in (None outside fm_lab runs)."""
    return _CURRENT.get()


def activate(ctx: SpanContext | None) -> Token[SpanContext | None]:
    return _CURRENT.set(ctx)


def deactivate(token: Token[SpanContext | None]) -> None:
    _CURRENT.reset(token)


TRACEPARENT_ENV = "FM_LAB_TRACEPARENT"
_LINK: ContextVar[tuple[str, str] | None] = ContextVar("fm_lab_trace_link", default=None)


def parse_traceparent(value: str) -> tuple[str, str]:
    """``(trace_id, span_id)`` of a W3C ``traceparent`` (``00-<32 hex>-<16 hex>-01``)."""
    parts = value.strip().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        raise ValueError(f"not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>): {value!r}")
    try:
        int(parts[1], 16), int(parts[2], 16)
    except ValueError:
        raise ValueError(f"traceparent ids must be hex: {value!r}") from None
    return parts[1], parts[2]


def linked_parent() -> tuple[str, str] | None:
    """The span that new top-level runs hang under: set by :func:`link_trace` (a batch item)
    or by ``$FM_LAB_TRACEPARENT`` (the kernel of a batch notebook); None otherwise."""
    link = _LINK.get()
    if link is not None:
        return link
    raw = os.environ.get(TRACEPARENT_ENV)
    return parse_traceparent(raw) if raw else None


@contextlib.contextmanager
def link_trace(trace_id: str, span_id: str) -> Iterator[None]:
    """Top-level runs started in this block join trace ``trace_id`` under span ``span_id``."""
    token = _LINK.set((trace_id, span_id))
    try:
        yield
    finally:
        _LINK.reset(token)


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


class Span:
    """An open span; use it as a context manager (``with fm_lab.tracing.span(...) as s:``)."""

    __slots__ = (
        "_token",
        "attributes",
        "ended",
        "events",
        "input",
        "kind",
        "name",
        "output",
        "parent",
        "record",
        "span_id",
        "started",
        "status",
        "usage",
    )

    def __init__(
        self,
        parent: SpanContext | None,
        name: str,
        kind: str = "custom",
        input: Any = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self.parent = parent
        self.name = name
        self.kind = kind
        self.span_id = new_span_id()
        self.input = input
        self.output: Any = None
        self.attributes = dict(attributes or {})
        self.events: list[dict[str, Any]] = []
        self.usage: dict[str, Any] = {}
        self.status = "ok"
        self.started = time.time()
        self.ended: float | None = None
        self.record: dict[str, Any] | None = None
        self._token: Token[SpanContext | None] | None = None

    @property
    def recording(self) -> bool:
        """False outside a run or trace: the span is a no-op."""
        return self.parent is not None

    @property
    def trace_id(self) -> str | None:
        """The trace this span belongs to (None when it is not recording)."""
        return self.parent.trace_id if self.parent is not None else None

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def add_event(self, name: str, **attributes: Any) -> None:
        self.events.append({"name": name, "time": time.time(), "attributes": attributes})

    def set_usage(
        self,
        *,
        model: str | None = None,
        provider: str | None = None,
        cost_usd: float | None = None,
        **tokens: int | None,
    ) -> None:
        """Record an LLM call's model and token counts (OpenTelemetry GenAI names are added
        as attributes: ``gen_ai.request.model``, ``gen_ai.usage.input_tokens``, ...)."""
        for key, value in tokens.items():
            if key not in _USAGE_FIELDS:
                raise TypeError(f"unknown usage field {key!r}; use {', '.join(_USAGE_FIELDS)}")
            self.usage[key] = value
            if value is not None:
                self.attributes[f"gen_ai.usage.{key}"] = value
        if model is not None:
            self.usage["model"] = model
            self.attributes["gen_ai.request.model"] = model
        if provider is not None:
            self.usage["provider"] = provider
            self.attributes["gen_ai.system"] = provider
        if cost_usd is not None:
            self.usage["cost_usd"] = cost_usd

    def end(self, status: str | None = None, error: Any = None) -> None:
        """Close the span and hand it to the run's journal (once)."""
        if self.ended is not None:
            return
        self.ended = time.time()
        if status is not None:
            self.status = status
        parent = self.parent
        if parent is None:
            return
        self.record = {
            "k": "span",
            "trace": parent.trace_id,
            "span": self.span_id,
            "parent": parent.span_id,
            "run": parent.run_id,
            "kind": self.kind,
            "name": self.name,
            "entity": self.attributes.get("entity_id", self.name),
            "workflow": parent.workflow_id,
            "node": parent.node_id,
            "agent": self.attributes.get("agent", parent.agent),
            "resource": self.attributes.get("resource_id", parent.resource_id),
            "started": self.started,
            "ended": self.ended,
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "error": error,
            "attrs": self.attributes or None,
            "events": self.events or None,
            **self.usage,
        }
        parent.sink(self.record)

    def context(self) -> SpanContext | None:
        if self.parent is None:
            return None
        return self.parent.child(
            self.span_id, agent=self.attributes.get("agent", self.parent.agent)
        )

    def __enter__(self) -> Span:
        self._token = activate(self.context()) if self.parent is not None else None
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._token is not None:
            deactivate(self._token)
        if exc is not None:
            self.end("error", {"type": type(exc).__name__, "message": str(exc)})
        else:
            self.end()


def span(name: str, kind: str = "custom", *, input: Any = None, **attributes: Any) -> Span:
    """Open a span under the current one (a no-op outside fm_lab runs and traces: see
    :func:`fm_lab.tracing.traced`).

    >>> with span("lookup", kind="tool", input={"q": "x"}) as s:
    ...     s.output = 42
    """
    return Span(current(), name, kind, input, attributes)
