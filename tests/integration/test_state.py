"""Workflow state: schema-checked updates, kept outputs on failure, persistence across resume."""

from __future__ import annotations

from pathlib import Path

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

STATE = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "default": 0},
        "label": {"type": "string"},
    },
    "additionalProperties": False,
}


def test_state_schema_violation_fails_the_node_and_the_run(store, reopen):
    b = fm_lab.WorkflowBuilder("bad_state", state=STATE)
    a = b.node("a", "template", template="hello")
    ok = b.node("ok", "set_state", values={"count": "{{ nodes.a.output | length }}"})
    bad = b.node("bad", "set_state", values={"count": "many"})
    after = b.node("after", "template", template="{{ state.count }}")
    a >> ok
    ok >> bad
    bad >> after

    run = fm_lab.run(b.build(), store=store)

    assert run.status == "failed"
    assert run.error["node"] == "bad"
    node = run.node("bad")
    assert node.status == "failed"
    assert node.error["kind"] == "validation"
    message = node.error["message"]
    assert "'bad'" in message
    assert "invalid state" in message
    assert "state.count" in message
    assert "'many' is not of type 'integer'" in message
    assert run.node("after").status == "pending"
    # earlier committed nodes keep their outputs and their state update; the bad one is not applied
    assert run.node("a").output == "hello"
    assert run.node("ok").output == {"count": 5}
    assert run.state == {"count": 5}
    stored = fm_lab.get_run(run.run_id, store=reopen(store))
    assert stored.status == "failed"
    assert stored.error["node"] == "bad"
    assert stored.node("a").output == "hello"
    assert stored.node("ok").status == "succeeded"
    assert stored.node("bad").status == "failed"
    assert stored.state == {"count": 5}
    df = run.nodes_df().set_index("node_id")
    assert df.loc["a", "status"] == "succeeded"
    assert df.loc["bad", "status"] == "failed"


def test_unknown_state_key_from_code_node_is_rejected(store, register):
    def sneaky(ctx) -> str:
        ctx.set_state({"colour": "red"})
        return "unreachable"

    b = fm_lab.WorkflowBuilder("sneaky_state", state=STATE)
    b.node("sneaky", "code", function=register(sneaky))

    run = fm_lab.run(b.build(), store=store)

    assert run.status == "failed"
    assert run.error["node"] == "sneaky"
    assert run.error["kind"] == "validation"
    assert "colour" in run.error["message"]
    assert run.state == {"count": 0}


def test_state_persists_across_resume(store, register, tmp_path, reopen):
    flag = tmp_path / "fixed.flag"
    calls = []

    def double(count: int) -> int:
        calls.append(count)
        if not Path(flag).exists():
            raise ValueError("not fixed yet")
        return count * 2

    b = fm_lab.WorkflowBuilder("state_resume", state=STATE)
    start = b.node("start", "set_state", values={"count": 5})
    work = b.node("work", "code", function=register(double), args={"count": "{{ state.count }}"})
    end = b.node(
        "end",
        "set_state",
        values={"count": "{{ state.count + 1 }}", "label": "done-{{ nodes.work.output }}"},
    )
    start >> work
    work >> end

    failed = fm_lab.run(b.build(), store=store)
    assert failed.status == "failed"
    assert failed.state == {"count": 5}
    assert fm_lab.get_run(failed.run_id, store=store).state == {"count": 5}

    flag.touch()
    resumed = fm_lab.resume(failed.run_id, store=reopen(store))

    assert resumed.status == "succeeded", resumed.error
    assert calls == [5, 5]  # the resumed node saw the state committed before the failure
    assert resumed.node("work").output == 10
    assert resumed.state == {"count": 6, "label": "done-10"}
    assert resumed.outputs == {"end": {"count": 6, "label": "done-10"}}
    stored = fm_lab.get_run(failed.run_id, store=reopen(store))
    assert stored.state == {"count": 6, "label": "done-10"}
    history = store.node_executions(failed.run_id, history=True)
    assert list(history["node_id"]).count("start") == 1
