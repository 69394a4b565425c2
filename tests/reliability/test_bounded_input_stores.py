"""Bounded input on both stores: what a DuckDB store keeps, a PostgreSQL store keeps too, or
refuses in one line before anything is stored (PostgreSQL text cannot hold a NUL byte)."""

from __future__ import annotations

import asyncio
import json

import pytest

import fm_lab
from fm_lab.spec import WorkflowValidationError, limits

STORES = ("duckdb", "postgres")

NUL = "a\x00b"
ECHO = {"id": "echo", "inputs": {"type": "object", "properties": {"x": {}}},
        "nodes": {"a": {"type": "template", "config": {"template": "{{ inputs.x }}"}}},
        "outputs": {"a": "{{ nodes.a.output }}", "x": "{{ inputs.x }}"}}


def test_nul_bytes_in_values_are_stored_and_read_back(store, register):
    def effect(value):
        return {"got": value, NUL: [NUL]}

    wf = {"id": "nul_values", "nodes": {"f": {"type": "code", "config": {
        "function": register(effect), "args": {"value": "{{ inputs.x }}"}}}},
        "outputs": {"f": "{{ nodes.f.output }}"}}
    run = fm_lab.run(wf, {"x": NUL}, store=store, progress=False)
    assert run.status == "succeeded", run.error
    stored = fm_lab.get_run(run.run_id, store=store)
    assert stored.outputs == {"f": {"got": NUL, NUL: [NUL]}}
    assert stored.node("f").output == {"got": NUL, NUL: [NUL]}


def test_a_nul_byte_in_a_node_error_is_kept(store, register):
    def fails():
        raise ValueError(f"bad {NUL}")

    wf = {"id": "nul_error", "nodes": {"f": {"type": "code", "config": {
        "function": register(fails)}}}}
    run = fm_lab.run(wf, store=store, progress=False)
    assert run.status == "failed"
    assert NUL in fm_lab.get_run(run.run_id, store=store).node("f").error["message"]


def test_a_nul_byte_in_a_step_name_is_kept_or_fails_the_run_clearly(store, register):
    async def stepped(ctx):
        await ctx.step("before", lambda: 1)
        return await ctx.step(NUL, lambda: 2)

    wf = {"id": "nul_step", "nodes": {"f": {"type": "code", "config": {
        "function": register(stepped)}}}}
    run = fm_lab.run(wf, store=store, progress=False)
    stored = fm_lab.get_run(run.run_id, store=store)
    if run.status == "succeeded":  # DuckDB keeps it
        assert stored.outputs is None or stored.status == "succeeded"
        return
    # PostgreSQL text cannot hold it: the run fails, saying so in one line, and is stored
    message = run.error["message"]
    assert "NUL" in message and "\n" not in message and stored.status == "failed"
    assert "NUL" in stored.error["message"]


@pytest.mark.parametrize("where", ["id", "name", "label"])
def test_a_nul_byte_in_a_workflow_text_is_refused_or_kept_never_half_stored(store, where):
    wf = {"id": "nul_text", "name": "plain",
          "nodes": {"a": {"type": "approval", "label": "ok", "config": {"message": "ok?"}}}}
    if where == "label":
        wf["nodes"]["a"]["label"] = NUL
    else:
        wf[where] = NUL
    try:
        run = fm_lab.run(wf, store=store, progress=False)
    except (WorkflowValidationError, OSError) as exc:
        assert "NUL" in str(exc) and "\n" not in str(exc)
        assert store.runs().empty  # refused before anything was stored
        return
    assert fm_lab.get_run(run.run_id, store=store).status == "suspended"


def test_a_nul_byte_in_a_span_name_is_kept_in_a_form_the_store_holds(store):
    from fm_lab.tracing import traced

    with traced(NUL, store=store, note=NUL) as root:
        pass
    spans = fm_lab.sql("select name, attributes from spans where trace_id = ?",
                       [root.trace_id], store=store)
    assert list(spans["name"]) in ([NUL], ["a\ufffdb"])  # PostgreSQL: U+FFFD in the name
    assert NUL in spans["attributes"][0] or "\\u0000" in spans["attributes"][0]


def test_a_nul_byte_in_a_memory_message_is_kept_or_refused_in_one_line(store):
    from fm_lab.memory import Memory

    memory = Memory(store=store, last_messages=5, recall=False)
    try:
        asyncio.run(memory.append("t1", None, [{"role": "user", "content": NUL}]))
    except Exception as exc:  # PostgreSQL text cannot hold it
        assert "NUL" in str(exc) and "\n" not in str(exc)
        assert memory.messages("t1").empty  # nothing half stored
        return
    assert [json.loads(c) for c in memory.messages("t1")["content"]] == [NUL]


def test_deeply_nested_inputs_are_refused_before_anything_is_stored(store):
    deep: list = []
    for _ in range(limits.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(WorkflowValidationError, match="nested deeper than"):
        fm_lab.run(ECHO, {"x": deep}, store=store)
    assert store.runs().empty


def test_nested_and_large_inputs_within_limits_round_trip(store):
    nested: list = ["leaf"]
    for _ in range(limits.MAX_DEPTH - 10):
        nested = [nested]
    big = "x" * 2_000_000
    run = fm_lab.run(ECHO, {"x": {"nested": nested, "big": big}}, store=store, progress=False)
    assert run.status == "succeeded", run.error
    stored = fm_lab.get_run(run.run_id, store=store)
    assert stored.outputs["x"] == {"nested": nested, "big": big}


@pytest.mark.parametrize("run_id", ["../../x", "a/b", "a\x00b", ""])
def test_a_path_like_run_id_stores_nothing(store, run_id):
    from fm_lab.store.ids import InvalidIdError

    with pytest.raises(InvalidIdError):
        fm_lab.run(ECHO, {"x": 1}, run_id=run_id, store=store)
    assert store.runs().empty
