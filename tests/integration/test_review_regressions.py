"""Regressions found in review: each test failed before its fix."""

import asyncio
import threading

import pytest
from pydantic import BaseModel

import fm_lab
from fm_lab.tracing import span

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)


def test_bodies_built_in_a_loop_each_run_their_own_spec(store):
    class Multi(fm_lab.NodeType):
        type_name = "review_multi"

        class Config(BaseModel):
            templates: list[str]

        async def run(self, ctx, inputs):
            return [await ctx.run_body({"node": {"type": "template",
                                                 "config": {"template": t}}}, f"[{i}]")
                    for i, t in enumerate(self.config.templates)]

    fm_lab.register_node(Multi)
    wf = {"id": "m", "nodes": {"m": {"type": "review_multi",
                                     "config": {"templates": ["one", "two", "three"]}}}}
    assert fm_lab.run(wf, store=store).outputs == {"m": ["one", "two", "three"]}


def test_an_explicit_run_id_cannot_be_reused(store):
    wf = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "x"}}}}
    fm_lab.run(wf, run_id="same", store=store)
    with pytest.raises(ValueError, match="already names a succeeded run"):
        fm_lab.run(wf, run_id="same", store=store)
    assert len(fm_lab.runs(store=store)) == 1


def test_a_stale_cancel_request_does_not_cancel_a_later_resume(store, register):
    flag = {"fail": True}

    def flaky():
        if flag["fail"]:
            raise ValueError("not yet")
        return "ok"

    name = register(flaky)
    wf = {"id": "w", "nodes": {"a": {"type": "code", "config": {"function": name}}}}
    run = fm_lab.run(wf, store=store)
    assert run.status == "failed"
    store.request_cancel(run.run_id)  # a request that came too late
    flag["fail"] = False
    assert fm_lab.resume(run.run_id, store=store).status == "succeeded"


def test_cancelling_a_run_whose_process_died_marks_it_cancelled(store):
    wf = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "x"}}}}
    run = fm_lab.run(wf, store=store)
    store.set_status(run.run_id, "running")  # as left by a killed process
    fm_lab.cancel(run.run_id, store=store)
    assert store.run_status(run.run_id) == "cancelled"


def test_a_span_payload_that_is_not_json_is_kept_as_text(store, register):
    class Client:
        def __repr__(self):
            return "<Client>"

    def call_tool():
        with span("lookup", kind="tool", input={"client": Client()}):
            pass
        return "ok"

    wf = {"id": "w", "nodes": {"a": {"type": "code", "config": {"function": register(call_tool)}}}}
    run = fm_lab.run(wf, store=store)
    assert run.status == "succeeded", run.error
    tool = fm_lab.traces(kind="tool", store=store)
    assert "<Client>" in tool["input"].iloc[0]


def test_a_suspend_payload_that_is_not_json_fails_the_node_clearly(store, register):
    async def ask(ctx):
        return await ctx.suspend(object())

    wf = {"id": "w", "nodes": {"a": {"type": "code", "config": {"function": register(ask)}}}}
    run = fm_lab.run(wf, store=store)
    assert run.status == "failed"
    assert run.error["node"] == "a" and run.error["kind"] == "validation"


def test_a_failed_parallel_branch_stops_its_siblings(store, register):
    effects = []
    sibling_started = asyncio.Event()

    async def boom():
        await sibling_started.wait()  # fail only once the sibling is under way
        raise ValueError("branch a failed")

    async def slow_charge():
        sibling_started.set()
        try:
            await asyncio.Event().wait()  # never set: only a cancellation ends this branch
        except asyncio.CancelledError:
            effects.append("cancelled")
            raise
        effects.append("charged")

    wf = {"id": "w", "nodes": {"p": {"type": "parallel", "config": {"branches": {
        "a": {"node": {"type": "code", "config": {"function": register(boom)}}},
        "b": {"node": {"type": "code", "config": {"function": register(slow_charge)}}}}}}}}

    async def main():
        # the timeout only guards against a hang; the proof is the cancellation event and the
        # absence of any task still running once the run has returned
        run = await asyncio.wait_for(fm_lab.arun(wf, store=store), timeout=60)
        leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return run, leaked

    run, leaked = asyncio.run(main())
    assert run.status == "failed"
    assert (run.error["node"], run.error["message"]) == ("p", "p.a: branch a failed")
    assert effects == ["cancelled"]  # the sibling was stopped before the run returned
    assert leaked == []


def test_a_failing_edge_condition_names_the_edge(store):
    wf = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "{{ 1 }}"}},
                               "b": {"type": "template", "config": {"template": "x"}}},
          "edges": [{"source": "a", "target": "b",
                     "condition": "{{ nodes.a.output.x.y > 1 }}"}]}
    run = fm_lab.run(wf, store=store)
    assert run.status == "failed"
    assert run.error["kind"] == "validation" and "a -> b" in run.error["message"]


def test_set_state_inside_a_body_updates_the_state_and_survives_resume(store):
    wf = {"id": "w", "state": {"type": "object", "properties": {"x": {"type": "integer",
                                                                      "default": 0}}},
          "nodes": {
              "p": {"type": "parallel", "config": {"branches": {
                  "set": {"node": {"type": "set_state", "config": {"values": {"x": 5}}}}}}},
              "show": {"type": "template", "config": {"template": "x={{ state.x }}"}},
              "wait": {"type": "wait_for_event", "config": {"event": "go"}},
              "after": {"type": "template", "config": {"template": "still {{ state.x }}"}}},
          "edges": ["p -> show", "show -> wait", "wait -> after"]}
    run = fm_lab.run(wf, store=store)
    assert run.node("show").output == "x=5"
    done = fm_lab.signal(run.run_id, "go", store=store)
    assert done.outputs == {"after": "still 5"}


def test_sync_code_that_runs_a_workflow_inside_many_items_does_not_deadlock(store, register):
    inner = {"id": "inner", "nodes": {"c": {"type": "code", "config": {
        "function": register(lambda: 1)}}}}

    def outer_item():
        return fm_lab.run(inner, store=fm_lab.Store(":memory:")).outputs["c"]

    wf = {"id": "w", "nodes": {"loop": {"type": "foreach", "config": {
        "items": list(range(40)), "concurrency": 40,
        "node": {"type": "code", "config": {"function": register(outer_item)}}}}}}
    done = {}
    worker = threading.Thread(target=lambda: done.update(run=fm_lab.run(wf, store=store)),
                              daemon=True)
    worker.start()
    worker.join(timeout=300)  # a hang guard: a deadlocked run never returns
    assert not worker.is_alive(), "the run deadlocked"
    run = done["run"]
    assert run.status == "succeeded" and run.outputs["loop"]["succeeded"] == 40


def test_sub_workflow_items_have_item_spans(store):
    body = {"id": "b", "nodes": {"x": {"type": "template", "config": {"template": "x"}}}}
    wf = {"id": "w", "nodes": {"loop": {"type": "foreach", "config": {
        "items": [1, 2], "workflow": body}}}}
    run = fm_lab.run(wf, store=store)
    tree = fm_lab.trace(run.run_id, store=store)
    items = tree[tree["kind"] == "item"]
    assert sorted(items["name"]) == ["loop[0]", "loop[1]"]
    inner = tree[tree["name"].str.startswith("loop[0]/")]
    assert set(inner["parent_span_id"]) == set(items[items["name"] == "loop[0]"]["span_id"])
