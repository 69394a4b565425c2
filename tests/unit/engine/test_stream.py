"""Run event streams (fm_lab.stream): typed events in order, sync and async, resumed runs,
consumers that leave or fall behind, and runs that cannot start."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

import fm_lab
from fm_lab.engine.events import (
    EventsDropped,
    ItemProgress,
    Log,
    NodeFailed,
    NodeSuspended,
    RunFinished,
    RunStarted,
    from_dict,
)
from fm_lab.spec.errors import WorkflowValidationError
from fm_lab.store import Store

FLOW: dict[str, Any] = {
    "id": "evs",
    "nodes": {
        "start": {"type": "template", "config": {"template": "go"}},
        "loop": {"type": "foreach", "config": {
            "items": "{{ inputs.xs }}", "concurrency": 1,
            "node": {"type": "template", "config": {"template": "x{{ item }}"}}}},
        "note": {"type": "log", "config": {"message": "{{ nodes.loop.output.succeeded }} done"}},
        "approve": {"type": "approval", "config": {"message": "ok?"}},
        "done": {"type": "template", "config": {"template": "{{ nodes.approve.output.approved }}"}},
    },
    "edges": ["start -> loop", "loop -> note", "note -> approve", "approve -> done"],
}


@pytest.fixture
def store(tmp_path: Any) -> Any:
    made = Store(tmp_path / "streams.duckdb")
    yield made
    made.close()


def described(events: list[Any]) -> list[tuple[str, str | None]]:
    return [(e.kind, getattr(e, "path", None)) for e in events]


def test_a_run_with_a_foreach_and_a_suspension_streams_its_events_in_order(store: Any) -> None:
    stream = fm_lab.stream(FLOW, {"xs": [1, 2]}, store=store)
    events = list(stream)
    assert described(events) == [
        ("run_started", None),
        ("node_started", "start"), ("node_finished", "start"),
        ("node_started", "loop"),
        ("item_progress", "loop"), ("item_progress", "loop"), ("item_progress", "loop"),
        ("node_finished", "loop"),
        ("node_started", "note"), ("log", "note"), ("node_finished", "note"),
        ("node_started", "approve"), ("node_suspended", "approve"),
        ("run_finished", None),
    ]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {e.run_id for e in events} == {stream.run_id}
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))
    started = events[0]
    assert isinstance(started, RunStarted) and (started.workflow_id, started.resumed) == (
        "evs", False)
    items = [e for e in events if isinstance(e, ItemProgress)]
    assert [(e.index, e.done, e.total) for e in items] == [(None, 0, 2), (0, 1, 2), (1, 2, 2)]
    [log] = [e for e in events if isinstance(e, Log)]
    assert (log.level, log.message) == ("info", "2 done")
    [waiting] = [e for e in events if isinstance(e, NodeSuspended)]
    assert (waiting.label, waiting.payload["message"]) == ("approve", "ok?")
    assert events[3 + 4].output["results"] == ["x1", "x2"]  # node_finished of loop
    # every event is JSON and reads back as itself
    for event in events:
        assert from_dict(json.loads(event.to_json())) == event
    assert stream.result().status == "suspended"

    rest = fm_lab.stream_resume(stream.run_id, {"approved": True}, label="approve", store=store)
    events = list(rest.events())
    assert described(events) == [
        ("run_started", None),
        ("node_started", "approve"), ("node_finished", "approve"),
        ("node_started", "done"), ("node_finished", "done"),
        ("run_finished", None),
    ]
    assert isinstance(events[0], RunStarted) and events[0].resumed
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert (finished.status, finished.outputs) == ("succeeded", {"done": True})
    assert rest.result().status == "succeeded"


def test_async_iteration_and_a_sync_loop_inside_a_running_event_loop(store: Any) -> None:
    async def consume() -> tuple[list[str], list[str]]:
        kinds = [e.kind async for e in fm_lab.stream(FLOW, {"xs": [1]}, store=store)]
        # a plain for loop where a loop is running (a notebook cell): the run has its thread
        plain = [e.kind for e in fm_lab.stream(FLOW, {"xs": []}, store=store)]
        return kinds, plain

    kinds, plain = asyncio.run(consume())
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("item_progress") == 2
    assert plain.count("item_progress") == 1 and plain[-1] == "run_finished"


def test_a_consumer_that_leaves_early_does_not_stop_the_run(store: Any) -> None:
    stream = fm_lab.stream(FLOW, {"xs": [1, 2, 3]}, store=store)
    for event in stream:
        assert event.kind == "run_started"
        break
    run = stream.result()
    assert run.status == "suspended"
    assert run.node("loop").output["succeeded"] == 3
    with pytest.raises(RuntimeError, match="iterated once"):
        list(stream)


def test_a_slow_consumer_gets_a_count_of_what_was_dropped_and_the_end(store: Any) -> None:
    stream = fm_lab.stream(FLOW, {"xs": list(range(20))}, store=store, max_buffered=4)
    stream.result()  # nobody read while the run went on
    events = list(stream)
    assert described(events[:4]) == [("run_started", None), ("node_started", "start"),
                                      ("node_finished", "start"), ("node_started", "loop")]
    dropped = events[4]
    assert isinstance(dropped, EventsDropped) and dropped.count == stream.dropped > 0
    assert isinstance(events[-1], RunFinished) and events[-1].status == "suspended"
    assert events[-1].seq == 4 + dropped.count + 1  # the gap is the count


def test_a_failed_node_and_a_run_that_cannot_start(store: Any) -> None:
    failing = {"id": "bad", "nodes": {"boom": {"type": "fail", "config": {"message": "no"}}}}
    events = list(fm_lab.stream(failing, store=store))
    assert [e.kind for e in events] == ["run_started", "node_started", "node_failed",
                                        "run_finished"]
    failed = events[2]
    assert isinstance(failed, NodeFailed) and "no" in (failed.error or {})["message"]
    assert isinstance(events[-1], RunFinished) and events[-1].status == "failed"

    invalid = {"id": "bad", "nodes": {"x": {"type": "nope"}}}
    stream = fm_lab.stream(invalid, store=store)
    with pytest.raises(WorkflowValidationError):
        list(stream)
    with pytest.raises(WorkflowValidationError):
        stream.result()


def test_resuming_a_finished_run_streams_only_its_end(store: Any) -> None:
    run = fm_lab.run({"id": "one", "nodes": {"a": {"type": "template",
                                                      "config": {"template": "a"}}}},
                     store=store)
    events = list(fm_lab.stream_resume(run.run_id, store=store))
    assert [e.kind for e in events] == ["run_finished"]
    assert isinstance(events[0], RunFinished) and events[0].outputs == {"a": "a"}


def test_unknown_event_kinds_and_bad_buffer_sizes_are_refused(store: Any) -> None:
    with pytest.raises(ValueError, match="unknown run event kind 'nope'"):
        from_dict({"kind": "nope"})
    with pytest.raises(ValueError, match="max_buffered must be at least 1"):
        fm_lab.stream(FLOW, {"xs": []}, store=store, max_buffered=0)


ITEMS_WAIT: dict[str, Any] = {
    "id": "each",
    "nodes": {"loop": {"type": "foreach", "config": {
        "items": "{{ inputs.xs }}", "concurrency": 1,
        "workflow": {"id": "body", "nodes": {
            "ask": {"type": "approval", "config": {"message": "ok {{ inputs.item }}?"}},
            "t": {"type": "template", "config": {"template": "{{ nodes.ask.output.approved }}"}},
        }, "edges": ["ask -> t"]}}}},
}


def test_suspended_foreach_items_stream_and_resume_item_by_item(store: Any) -> None:
    stream = fm_lab.stream(ITEMS_WAIT, {"xs": [1, 2]}, store=store)
    events = list(stream)
    assert described(events) == [
        ("run_started", None), ("node_started", "loop"), ("item_progress", "loop"),
        ("node_started", "loop[0]/ask"), ("node_suspended", "loop[0]/ask"),
        ("item_progress", "loop"),
        ("node_started", "loop[1]/ask"), ("node_suspended", "loop[1]/ask"),
        ("item_progress", "loop"),
        ("node_suspended", "loop"), ("run_finished", None),
    ]
    assert [(e.index, e.status) for e in events if isinstance(e, ItemProgress)] == [
        (None, None), (0, "suspended"), (1, "suspended")]
    assert [e.leaf for e in events if isinstance(e, NodeSuspended)] == [True, True, False]

    first = list(fm_lab.stream_resume(stream.run_id, {"approved": True},
                                      path_id="loop[0]/ask", store=store))
    assert described(first) == [
        ("run_started", None), ("node_started", "loop"), ("item_progress", "loop"),
        ("node_started", "loop[0]/ask"), ("node_finished", "loop[0]/ask"),
        ("node_started", "loop[0]/t"), ("node_finished", "loop[0]/t"),
        ("item_progress", "loop"),
        ("item_progress", "loop"),  # item 1 still waits: it ends suspended again
        ("node_suspended", "loop"), ("run_finished", None),
    ]
    assert [(e.index, e.status) for e in first if isinstance(e, ItemProgress)] == [
        (None, None), (0, "succeeded"), (1, "suspended")]
    last = list(fm_lab.stream_resume(stream.run_id, {"approved": False},
                                     path_id="loop[1]/ask", store=store))
    assert described(last) == [
        ("run_started", None), ("node_started", "loop"), ("item_progress", "loop"),
        ("node_started", "loop[1]/ask"), ("node_finished", "loop[1]/ask"),
        ("node_started", "loop[1]/t"), ("node_finished", "loop[1]/t"),
        ("item_progress", "loop"), ("node_finished", "loop"), ("run_finished", None),
    ]
    progress = [e for e in last if isinstance(e, ItemProgress)]
    # item 0 finished before this resume: counted, not streamed again
    assert [(e.index, e.done, e.total) for e in progress] == [(None, 0, 2), (1, 2, 2)]
    finished = last[-1]
    assert isinstance(finished, RunFinished) and finished.status == "succeeded"
