"""The OpenTelemetry bridge: export fm_lab spans to any ``SpanExporter`` (OTLP to Phoenix,
Langfuse, Jaeger, ...), and record spans that OTel-instrumented code opens inside a node as
children of that node's span."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fm_lab.store.base import RunStore

_ENABLED = False
_TYPED_ATTRIBUTES = {
    "model": "gen_ai.request.model", "provider": "gen_ai.system",
    "input_tokens": "gen_ai.usage.input_tokens", "output_tokens": "gen_ai.usage.output_tokens",
    "cached_tokens": "gen_ai.usage.cached_tokens",
    "reasoning_tokens": "gen_ai.usage.reasoning_tokens", "cost_usd": "fm_lab.cost_usd",
}


def _ns(value: Any) -> int:
    if value is None or value != value:
        return 0
    stamp = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    if isinstance(stamp, dt.datetime):
        return int(stamp.timestamp() * 1_000_000_000)
    return int(stamp)


def export_otel(exporter: Any, *, run_id: str | None = None, since: Any = None,
                store: RunStore | None = None, batch: int = 512) -> int:
    """Send stored spans (of one run, or since a time) to an OTel ``SpanExporter``; returns
    how many were sent. Secrets were masked before the spans were stored."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    from fm_lab.tracing.query import trace, traces

    frame = (trace(run_id, store=store) if run_id
             else traces(since=since, limit=None, store=store))
    resource = Resource.create({"service.name": "fm_lab"})
    spans = []
    for row in frame.to_dict("records"):
        context = SpanContext(int(row["trace_id"], 16), int(row["span_id"], 16), False,
                              TraceFlags(TraceFlags.SAMPLED))
        parent = None
        if isinstance(row["parent_span_id"], str):
            parent = SpanContext(int(row["trace_id"], 16), int(row["parent_span_id"], 16),
                                 False, TraceFlags(TraceFlags.SAMPLED))
        attributes: dict[str, Any] = {"fm_lab.kind": row["kind"], "fm_lab.run_id": row["run_id"]}
        for key in ("entity_id", "workflow_id", "node_id", "agent", "resource_id"):
            if isinstance(row.get(key), str):
                attributes[f"fm_lab.{key}"] = row[key]
        for column, name in _TYPED_ATTRIBUTES.items():
            value = row.get(column)
            if value is not None and value == value:
                attributes[name] = value.item() if hasattr(value, "item") else value
        if isinstance(row.get("attributes"), str):
            for key, value in json.loads(row["attributes"]).items():
                if isinstance(value, str | bool | int | float):
                    attributes.setdefault(key, value)
        status = Status(StatusCode.ERROR if row["status"] == "error" else StatusCode.OK)
        spans.append(ReadableSpan(
            name=str(row["name"]), context=context, parent=parent, resource=resource,
            attributes=attributes, kind=SpanKind.INTERNAL, status=status,
            start_time=_ns(row["started_at"]), end_time=_ns(row["ended_at"])))
    for start in range(0, len(spans), batch):
        exporter.export(spans[start:start + batch])
    return len(spans)


def enabled() -> bool:
    return _ENABLED


def instrument() -> None:
    """Record spans of OTel-instrumented libraries run inside fm_lab nodes as fm_lab spans
    (children of the node's span). Installs an SDK TracerProvider when none is set."""
    global _ENABLED
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = otel_trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        otel_trace.set_tracer_provider(provider)
    if not _ENABLED:
        provider.add_span_processor(_Mirror())  # type: ignore[arg-type]
        _ENABLED = True


@contextlib.contextmanager
def node_context(trace_id: str, span_id: str) -> Iterator[None]:
    """Make the node's span the current OTel span, so OTel spans nest under it."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    parent = NonRecordingSpan(SpanContext(int(trace_id, 16), int(span_id, 16), False,
                                          TraceFlags(TraceFlags.SAMPLED)))
    token = otel_context.attach(otel_trace.set_span_in_context(parent))
    try:
        yield
    finally:
        otel_context.detach(token)


class _Mirror:
    """An OTel SpanProcessor writing finished spans into the current fm_lab run."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def _on_ending(self, span: Any) -> None:  # called by opentelemetry-sdk >= 1.3x
        return None

    def on_end(self, span: Any) -> None:
        from fm_lab.tracing.spans import current

        ctx = current()
        if ctx is None or span.context is None:
            return
        parent = span.parent
        ctx.sink({
            "k": "span", "trace": f"{span.context.trace_id:032x}",
            "span": f"{span.context.span_id:016x}",
            "parent": f"{parent.span_id:016x}" if parent is not None else ctx.span_id,
            "run": ctx.run_id, "kind": "otel", "name": span.name, "entity": span.name,
            "workflow": ctx.workflow_id, "node": ctx.node_id,
            "started": (span.start_time or 0) / 1e9, "ended": (span.end_time or 0) / 1e9,
            "status": "error" if span.status.status_code.name == "ERROR" else "ok",
            "attrs": {k: v for k, v in (span.attributes or {}).items()},
        })

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
