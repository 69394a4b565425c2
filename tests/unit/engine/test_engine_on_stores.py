"""The runner and the run session through the store seam: the same behaviour on the in-memory
store (plain Python, no database) and on DuckDB, so the engine depends on ``RunStore`` alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import fm_lab
from fm_lab.store import MemoryStore, RunStore, Store

CHAIN = {
    "id": "chain",
    "nodes": {
        "a": {"type": "template", "config": {"template": "x{{ inputs.n }}"}},
        "b": {"type": "template", "config": {"template": "{{ nodes.a.output }}y"}},
    },
    "edges": ["a -> b"],
}
APPROVE = {
    "id": "approve",
    "nodes": {
        "draft": {"type": "template", "config": {"template": "text"}},
        "ok": {"type": "approval", "config": {"message": "ship it?", "label": "ok"}},
        "done": {"type": "template", "config": {"template": "{{ nodes.ok.output.approved }}"}},
    },
    "edges": ["draft -> ok", "ok -> done"],
}


@pytest.fixture(params=["memory", "duckdb"])
def store(request: pytest.FixtureRequest) -> Iterator[RunStore]:
    """Each test runs on the in-memory store and on an in-memory DuckDB store."""
    made: RunStore = MemoryStore() if request.param == "memory" else Store(":memory:")
    yield made
    made.close()


def test_both_stores_implement_the_protocol(store: RunStore) -> None:
    assert isinstance(store, RunStore)
    assert "runs" in store.supports


def test_a_chain_runs_and_its_nodes_are_stored_in_order(store: RunStore) -> None:
    run = fm_lab.run(CHAIN, {"n": 1}, store=store)
    assert (run.status, run.outputs) == ("succeeded", {"b": "x1y"})
    snapshot = store.load_run(run.run_id)
    assert list(snapshot.nodes) == ["a", "b"]
    assert [n["status"] for n in snapshot.nodes.values()] == ["succeeded", "succeeded"]
    assert snapshot.nodes["a"]["seq"] < snapshot.nodes["b"]["seq"]
    assert store.node_executions(run.run_id)["node_id"].tolist() == ["a", "b"]
    assert store.runs()["run_id"].tolist() == [run.run_id]


def test_a_failing_node_is_retried_then_fails_the_run(store: RunStore, register: Any) -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        raise ConnectionError("broken input")  # a system error: retried

    wf = {"id": "fails", "nodes": {"f": {"type": "code", "config": {"function": register(flaky)},
                                         "retry": {"max_attempts": 2, "backoff_s": 0}}}}
    run = fm_lab.run(wf, store=store)
    assert store.runs()["status"].tolist() == ["failed"] == [run.status]
    with pytest.raises(fm_lab.RunFailedError, match="broken input"):
        run.raise_for_status()
    node = store.load_run(run.run_id).nodes["f"]
    assert (node["status"], node["attempts"], len(calls)) == ("failed", 2, 2)


def test_a_suspended_run_waits_is_checked_and_resumes_once(store: RunStore) -> None:
    run = fm_lab.run(APPROVE, store=store)
    assert run.status == "suspended"
    rows = store.pending_rows(run.run_id)
    assert [(r["path_id"], r["label"]) for r in rows] == [("ok", "ok")]
    assert list(store.pending(run.run_id)["path_id"]) == ["ok"]
    with pytest.raises(fm_lab.ResumeValidationError):
        fm_lab.resume(run.run_id, {"approved": "perhaps"}, store=store)
    assert store.run_status(run.run_id) == "suspended"  # a rejected answer changed nothing
    assert store.load_run(run.run_id).nodes["draft"]["status"] == "succeeded"
    done = fm_lab.resume(run.run_id, {"approved": True}, store=store)
    assert (done.status, done.outputs) == ("succeeded", {"done": True})
    assert store.pending_rows(run.run_id) == []
    with pytest.raises(fm_lab.ResumeError, match="succeeded, not suspended"):
        fm_lab.resume(run.run_id, {"approved": False}, store=store)


def test_cancel_marks_a_suspended_run_and_its_children(store: RunStore) -> None:
    parent = {"id": "parent", "nodes": {"child": {"type": "subflow",
                                                  "config": {"workflow": APPROVE}}}}
    run = fm_lab.run(parent, store=store)
    assert run.status == "suspended"
    children = store.child_runs(run.run_id)
    assert len(children) == 1 and store.run_status(children[0]) == "suspended"
    assert store.child_runs(run.run_id, ("succeeded",)) == []
    fm_lab.cancel(run.run_id, store=store)
    assert store.run_status(run.run_id) == "cancelled"
    assert store.run_status(children[0]) == "cancelled"


def test_a_cancel_request_is_taken_once(store: RunStore) -> None:
    store.request_cancel("r1")
    assert store.take_cancel_request("r1") is True
    assert store.take_cancel_request("r1") is False


def test_a_rerun_reuses_the_cached_upstream_nodes(store: RunStore, register: Any) -> None:
    calls: list[str] = []

    def step(name: str, value: Any) -> str:
        calls.append(name)
        return f"{value}>{name}"

    name = register(step)
    wf = {"id": "cells", "nodes": {
        "a": {"type": "code", "config": {"function": name, "args": {
            "name": "a", "value": "{{ inputs.n }}"}}},
        "b": {"type": "code", "config": {"function": name, "args": {
            "name": "b", "value": "{{ nodes.a.output }}"}}}}, "edges": ["a -> b"]}
    first = fm_lab.run(wf, {"n": 2}, store=store)
    calls.clear()
    second = first.rerun("b")
    assert (second.outputs, calls) == (first.outputs, ["b"])
    assert store.load_run(second.run_id).nodes["a"]["cached_from"] == {
        "run_id": first.run_id, "path": "a"}


def test_a_run_left_running_is_orphaned_until_recovered(store: RunStore) -> None:
    run = fm_lab.run(CHAIN, {"n": 3}, store=store)
    store.set_status(run.run_id, "running")  # as a process that died mid-run leaves it
    assert store.orphaned_runs() == [run.run_id]
    recovered = fm_lab.recover(store=store)
    assert [r.run_id for r in recovered] == [run.run_id]
    assert store.run_status(run.run_id) == "succeeded"
    assert store.orphaned_runs() == []


def test_ingest_is_idempotent_by_seq(store: RunStore) -> None:
    run = fm_lab.run(CHAIN, {"n": 4}, store=store)
    snapshot = store.load_run(run.run_id)
    node = {"k": "node", "seq": snapshot.journal_seq, "node": "a", "status": "failed",
            "output": None}
    store.ingest(run.run_id, [node])  # a record at or below journal_seq: stored already
    assert store.load_run(run.run_id).nodes["a"]["status"] == "succeeded"


def test_unknown_runs_are_a_clear_error(store: RunStore) -> None:
    with pytest.raises(fm_lab.RunNotFoundError, match="no run 'nope'"):
        store.load_run("nope")
    with pytest.raises(fm_lab.RunNotFoundError, match="no run 'nope'"):
        store.run_status("nope")
