"""The OpenTelemetry bridge: stored spans exported to an OTel SpanExporter with their ids and
parent links, and spans opened by OTel-instrumented code inside a node recorded as fm_lab spans.

``instrument()`` installs a global TracerProvider, so it is used in this module only."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import fm_lab
from fm_lab.tracing import export_otel, instrument, span

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)


def _chat(model: str, input_tokens: int, output_tokens: int, cached_tokens: int,
          reasoning_tokens: int) -> str:
    with span("chat", kind="llm", input={"prompt": "hi"}) as s:
        s.set_usage(model=model, provider="openai", input_tokens=input_tokens,
                    output_tokens=output_tokens, cached_tokens=cached_tokens,
                    reasoning_tokens=reasoning_tokens)
        s.output = "hello"
    return "done"


@pytest.fixture
def traced_run(store, register):
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise fm_lab.NodeError("try again", kind="provider")
        return "ok"

    b = fm_lab.WorkflowBuilder("otel_export")
    a = b.node("ask", "code", function=register(_chat), args={
        "model": "gpt-4o", "input_tokens": 1200, "output_tokens": 300, "cached_tokens": 400,
        "reasoning_tokens": 64})
    loop = b.node("loop", "foreach", items=[1, 2],
                  node={"type": "template", "config": {"template": "{{ item }}"}})
    fl = b.node("fl", "code", function=register(flaky),
                retry={"max_attempts": 2, "backoff_s": 0.01})
    a >> [loop, fl]
    run = fm_lab.run(b.build(), store=store)
    assert run.status == "succeeded", run.error
    return run


def test_export_sends_every_span_with_its_ids_and_parent(store, traced_run):
    exporter = InMemorySpanExporter()
    sent = export_otel(exporter, run_id=traced_run.run_id, store=store)
    stored = store.sql("select * from spans").set_index("span_id", drop=False)
    exported = exporter.get_finished_spans()
    assert sent == len(exported) == len(stored) == 1 + 3 + 2 + 1 + 1  # wf, nodes, items, ...
    seen = set()
    for otel_span in exported:
        span_id = f"{otel_span.context.span_id:016x}"
        row = stored.loc[span_id]
        seen.add(span_id)
        assert f"{otel_span.context.trace_id:032x}" == row["trace_id"]
        if isinstance(row["parent_span_id"], str):
            assert otel_span.parent is not None
            assert f"{otel_span.parent.span_id:016x}" == row["parent_span_id"]
            assert f"{otel_span.parent.trace_id:032x}" == row["trace_id"]
        else:
            assert otel_span.parent is None and row["kind"] == "workflow"
        assert otel_span.name == row["name"]
        assert otel_span.attributes["fm_lab.kind"] == row["kind"]
        assert otel_span.attributes["fm_lab.run_id"] == traced_run.run_id
        assert abs(otel_span.start_time - row["started_at"].value) <= 1_000
        assert abs(otel_span.end_time - row["ended_at"].value) <= 1_000
        expected = StatusCode.ERROR if row["status"] == "error" else StatusCode.OK
        assert otel_span.status.status_code == expected
        assert otel_span.resource.attributes["service.name"] == "fm_lab"
    assert seen == set(stored["span_id"])


def test_export_puts_gen_ai_attributes_on_llm_spans(store, traced_run):
    exporter = InMemorySpanExporter()
    export_otel(exporter, run_id=traced_run.run_id, store=store)
    by_kind = {}
    for otel_span in exporter.get_finished_spans():
        by_kind.setdefault(otel_span.attributes["fm_lab.kind"], []).append(otel_span)
    (llm,) = by_kind["llm"]
    attrs = dict(llm.attributes)
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    assert attrs["gen_ai.system"] == "openai"
    expected = {"gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300,
                "gen_ai.usage.cached_tokens": 400, "gen_ai.usage.reasoning_tokens": 64}
    for key, value in expected.items():
        assert attrs[key] == value and isinstance(attrs[key], int), (key, attrs[key])
    assert attrs["fm_lab.node_id"] == "ask"
    for kind in ("workflow", "node", "item", "attempt"):
        for other in by_kind[kind]:
            assert not any(k.startswith("gen_ai.") for k in other.attributes), other.name
    (attempt,) = by_kind["attempt"]
    assert attempt.status.status_code == StatusCode.ERROR
    assert attempt.attributes["attempt"] == 1


class _Batches:
    """A SpanExporter that remembers the size of every batch."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def export(self, spans):
        self.batches.append(len(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def test_export_since_covers_every_run_in_batches(store, traced_run):
    second = fm_lab.run(fm_lab.Workflow.from_dict({"id": "tiny", "nodes": {
        "t": {"type": "template", "config": {"template": "x"}}}}), store=store)
    assert second.status == "succeeded"
    exporter = _Batches()
    sent = export_otel(exporter, since="2000-01-01", store=store, batch=3)
    total = int(store.sql("select count(*) as n from spans")["n"].item())
    assert sent == total == 8 + 2
    assert sum(exporter.batches) == total and max(exporter.batches) == 3


def _otel_library_call(depth: int) -> str:
    """Stands for a library instrumented with OpenTelemetry (an HTTP client, an SDK)."""
    tracer = otel_trace.get_tracer("some.library")
    with tracer.start_as_current_span("library.request") as outer:
        outer.set_attribute("http.method", "POST")
        for n in range(depth):
            with tracer.start_as_current_span(f"library.step{n}") as inner:
                inner.set_attribute("step", n)
    return "called"


async def _async_otel_call() -> str:
    with otel_trace.get_tracer("some.library").start_as_current_span("library.async"):
        return "called"


def test_instrumented_otel_spans_inside_a_node_become_fm_lab_spans(store, register):
    instrument()
    instrument()  # twice is harmless
    b = fm_lab.WorkflowBuilder("otel_in")
    first = b.node("first", "code", function=register(_otel_library_call), args={"depth": 1})
    second = b.node("second", "code", function=register(_async_otel_call))
    first >> second
    run = fm_lab.run(b.build(), store=store)
    assert run.status == "succeeded", run.error
    trace_id = store.sql("select trace_id from runs where run_id = ?",
                         [run.run_id])["trace_id"].item()
    spans = store.sql("select * from spans").set_index("name", drop=False)
    assert set(spans["trace_id"]) == {trace_id}
    otel = spans[spans["kind"] == "otel"]
    assert sorted(otel["name"]) == ["library.async", "library.request", "library.step0"]
    assert otel.loc["library.request", "parent_span_id"] == spans.loc["first", "span_id"]
    assert otel.loc["library.step0", "parent_span_id"] == otel.loc["library.request", "span_id"]
    assert otel.loc["library.async", "parent_span_id"] == spans.loc["second", "span_id"]
    assert (otel["run_id"] == run.run_id).all()
    assert otel.loc["library.request", "node_id"] == "first"
    assert json.loads(otel.loc["library.request", "attributes"])["http.method"] == "POST"
    depth = fm_lab.trace(run.run_id, store=store).set_index("name")["depth"]
    assert depth["library.request"] == 2 and depth["library.step0"] == 3


def test_instrument_leaves_otel_spans_outside_runs_alone(store):
    instrument()
    assert _otel_library_call(2) == "called"  # no fm_lab run: nothing recorded, nothing raised
    assert store.sql("select count(*) as n from spans")["n"].item() == 0
