"""``on_event``: what a widget or a progress bar hears while a run goes on."""

from __future__ import annotations

import threading

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)


def _events_of(store, workflow, inputs=None, **kwargs):
    heard: list[dict] = []
    run = fm_lab.run(workflow, inputs, store=store, on_event=heard.append, **kwargs)
    return run, heard


def test_every_node_is_heard_starting_and_finishing_in_order(store):
    wf = {
        "id": "events",
        "nodes": {
            "a": {"type": "template", "config": {"template": "x"}},
            "route": {
                "type": "branch",
                "config": {"routes": [{"handle": "yes", "when": "{{ false }}"}], "default": "no"},
            },
            "yes": {"type": "template", "config": {"template": "y"}},
            "no": {"type": "fail", "config": {"message": "stop here"}},
        },
        "edges": ["a -> route", "route.yes -> yes", "route.no -> no"],
    }
    run, heard = _events_of(store, wf)
    assert run.status == "failed"
    assert heard[0] == {"type": "run", "status": "running", "run_id": run.run_id,
                        "workflow_id": "events", "resumed": False}
    assert heard[-1]["type"] == "run" and heard[-1]["status"] == "failed"
    nodes = [(e["node_id"], e["status"]) for e in heard if e["type"] == "node"]
    assert nodes == [
        ("a", "running"),
        ("a", "succeeded"),
        ("route", "running"),
        ("route", "succeeded"),
        ("yes", "skipped"),
        ("no", "running"),
        ("no", "failed"),
    ]
    failed = next(e for e in heard if e["status"] == "failed" and e["type"] == "node")
    assert "stop here" in failed["error"]["message"] and failed["duration_ms"] >= 0
    assert all(e["run_id"] == run.run_id for e in heard)


def test_suspension_and_resume_are_heard_with_restored_nodes(store):
    wf = {
        "id": "events_hitl",
        "nodes": {
            "a": {"type": "template", "config": {"template": "x"}},
            "ok": {"type": "approval", "config": {"message": "go?"}},
        },
        "edges": ["a -> ok"],
    }
    run, heard = _events_of(store, wf)
    assert [e["status"] for e in heard if e.get("node_id") == "ok"] == ["running", "suspended"]
    assert heard[-1]["status"] == "suspended"
    resumed: list[dict] = []
    fm_lab.resume(run.run_id, {"approved": True}, node="ok", store=store, on_event=resumed.append)
    restored = [e for e in resumed if e.get("restored")]
    assert [(e["node_id"], e["status"]) for e in restored] == [("a", "succeeded")]
    assert resumed[-1] == {
        "type": "run",
        "status": "succeeded",
        "error": None,
        "outputs": {"ok": {"approved": True, "comment": None, "by": None}},
        "run_id": run.run_id,
    }


def test_a_listener_that_raises_never_breaks_the_run(store, caplog):
    calls = []

    def broken(event):
        calls.append(threading.current_thread().name)
        raise RuntimeError("listener bug")

    run = fm_lab.run(
        {"id": "ev", "nodes": {"a": {"type": "template", "config": {"template": "x"}}}},
        store=store,
        on_event=broken,
    )
    assert run.status == "succeeded" and len(calls) == 4
    assert "on_event listener failed" in caplog.text


def test_foreach_items_are_heard_by_path(store):
    wf = {
        "id": "events_loop",
        "nodes": {
            "loop": {
                "type": "foreach",
                "config": {
                    "items": [1, 2],
                    "node": {"type": "template", "config": {"template": "{{ item }}"}},
                },
            }
        },
    }
    _, heard = _events_of(store, wf)
    paths = {e["path"] for e in heard if e["type"] == "node" and e["status"] == "succeeded"}
    assert {"loop", "loop[0]", "loop[1]"} <= paths
