"""GraphWidget's model without a browser: traits are set the way the browser sets them
(``set_state``, custom messages through ``_handle_msg``) and Python state is asserted."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

import fm_lab
from fm_lab.spec.models import Position
from fm_lab.widget import BundleMissingError, GraphWidget
from fm_lab.widget import graph_widget as graph_widget_module

APPROVAL_FLOW: dict[str, Any] = {
    "id": "pay",
    "nodes": {
        "draft": {"type": "template", "config": {"template": "pay {{ inputs.amount }}"}},
        "check": {"type": "approval", "config": {"message": "{{ nodes.draft.output }}?"}},
        "paid": {"type": "template", "config": {"template": "paid"}},
        "refused": {"type": "template", "config": {"template": "refused"}},
    },
    "edges": [
        {"source": "draft", "target": "check"},
        {"source": "check", "target": "paid", "source_handle": "approved"},
        {"source": "check", "target": "refused", "source_handle": "rejected"},
    ],
    "inputs": {"type": "object", "required": ["amount"],
               "properties": {"amount": {"type": "integer"}}},
}


@pytest.fixture
def store(tmp_path: Path):
    s = fm_lab.Store(tmp_path / "widget.duckdb")
    yield s
    s.close()


@pytest.fixture
def widget(store: fm_lab.Store) -> GraphWidget:
    return GraphWidget(copy.deepcopy(APPROVAL_FLOW), store=store)


def browser_edit(widget: GraphWidget, graph: dict[str, Any]) -> None:
    """What ipywidgets does with a state update from the canvas (a fresh, decoded dict)."""
    widget.set_state({"graph": copy.deepcopy(graph), "edit_seq": widget.edit_seq + 1})


def browser_message(widget: GraphWidget, content: dict[str, Any]) -> None:
    """What ipywidgets does with ``model.send(content)`` from the canvas."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})


def test_initial_state_describes_the_workflow(widget: GraphWidget) -> None:
    assert widget.graph == fm_lab.Workflow.from_dict(APPROVAL_FLOW).to_dict()
    assert widget.issues == []
    assert widget.valid
    assert widget.handles["check"] == ["approved", "rejected"]
    assert widget.handles["draft"] is None
    types = {t["name"]: t for t in widget.node_types}
    assert "template" in types["template"]["schema"]["properties"]
    assert types["approval"]["resume_schema"]["required"] == ["approved"]
    assert types["template"]["resume_schema"] is None


def test_drag_in_the_canvas_updates_positions(widget: GraphWidget) -> None:
    graph = copy.deepcopy(widget.graph)
    graph["nodes"]["draft"]["position"] = {"x": 40, "y": 80}
    browser_edit(widget, graph)
    assert widget.workflow.nodes["draft"].position == Position(x=40, y=80)
    assert widget.synced == widget.edit_seq == 1


def test_connect_to_a_missing_route_is_an_issue_on_that_edge(widget: GraphWidget) -> None:
    graph = copy.deepcopy(widget.graph)
    graph["edges"].append({"source": "check", "target": "paid", "source_handle": "maybe"})
    browser_edit(widget, graph)
    assert len(widget.workflow.edges) == 4
    [issue] = widget.issues
    assert issue["edge"] == 3 and "no route 'maybe'" in issue["message"]
    assert not widget.valid


def test_config_edit_is_validated_on_the_node(widget: GraphWidget) -> None:
    graph = copy.deepcopy(widget.graph)
    graph["nodes"]["check"]["config"] = {"timeout_s": -1}
    browser_edit(widget, graph)
    assert widget.workflow.nodes["check"].config == {"timeout_s": -1}
    nodes = {(i["node"], i["location"]) for i in widget.issues}
    assert ("check", "nodes.check.config.message") in nodes
    assert ("check", "nodes.check.config.timeout_s") in nodes
    graph["nodes"]["check"]["config"] = {"message": "ok?"}
    browser_edit(widget, graph)
    assert widget.issues == []
    assert widget.workflow.nodes["check"].config == {"message": "ok?"}


def test_delete_and_add_nodes(widget: GraphWidget) -> None:
    graph = copy.deepcopy(widget.graph)
    del graph["nodes"]["refused"]
    graph["edges"] = [e for e in graph["edges"] if e["target"] != "refused"]
    graph["nodes"]["log_1"] = {"type": "log", "position": {"x": 1, "y": 2}}
    browser_edit(widget, graph)
    assert set(widget.workflow.nodes) == {"draft", "check", "paid", "log_1"}
    assert widget.workflow.nodes["log_1"].type == "log"
    assert [i["node"] for i in widget.issues] == ["log_1"]  # unreachable from the entry


def test_unreadable_graph_keeps_the_last_workflow(widget: GraphWidget) -> None:
    before = widget.workflow
    graph = copy.deepcopy(widget.graph)
    graph["nodes"]["draft"]["retry"] = {"max_attempts": 0}
    browser_edit(widget, graph)
    assert widget.workflow is before
    assert any(i["location"].startswith("nodes.draft.retry") for i in widget.issues)
    assert widget.synced == widget.edit_seq  # the edit was processed, and the canvas knows


def test_python_side_changes_reach_the_canvas(widget: GraphWidget) -> None:
    changed = fm_lab.Workflow.from_dict(
        {"id": "other", "nodes": {"a": {"type": "template", "config": {"template": "x"}},
                                  "b": {"type": "nope"}}, "edges": ["a -> b"]}
    )
    widget.workflow = changed
    assert widget.graph == changed.to_dict()
    assert widget.workflow is changed
    assert widget.synced == 0  # no browser edit
    [issue] = widget.issues
    assert issue["node"] == "b" and "unknown node type 'nope'" in issue["message"]


def test_run_colours_nodes_and_resume_from_the_form(widget: GraphWidget, store) -> None:
    seen: list[dict[str, Any]] = []
    original = widget._on_event

    def spy(event: dict[str, Any]) -> None:
        original(event)
        seen.append({"event": event, "results": dict(widget.results)})

    widget._on_event = spy  # type: ignore[method-assign]
    run = widget.run({"amount": 12})
    assert run.status == "suspended"
    # live: the draft node was coloured while the run was still going
    live = [s for s in seen if s["event"].get("node_id") == "draft"
            and s["event"]["status"] == "succeeded"]
    assert live and live[0]["results"]["draft"]["status"] == "succeeded"
    assert widget.results["draft"]["output"] == '"pay 12"'
    assert widget.results["check"]["status"] == "suspended"
    assert widget.run_state["status"] == "suspended"
    [waiting] = widget.pending
    assert waiting["node"] == "check" and waiting["path_id"] == "check"
    assert waiting["payload"]["message"] == "pay 12?"
    assert waiting["schema"]["required"] == ["approved"]
    assert (waiting["assignees"], waiting["roles"], waiting["mine"]) == ([], [], True)

    browser_message(widget, {"kind": "resume", "run_id": waiting["run_id"],
                             "path_id": "check", "data": {"approved": "perhaps"}})
    assert widget.run_state["status"] == "error"
    assert "approved" in widget.run_state["message"]
    assert fm_lab.get_run(run.run_id, store=store).status == "suspended"  # nothing lost
    assert [p["path_id"] for p in widget.pending] == ["check"]  # the form stays to correct

    browser_message(widget, {"kind": "resume", "run_id": waiting["run_id"],
                             "path_id": "check", "data": {"approved": True, "by": "ann"}})
    assert widget.last_error is None
    assert widget.run_state == {"run_id": run.run_id, "status": "succeeded", "error": None,
                                "policy": "trusted"}
    assert widget.results["paid"]["status"] == "succeeded"
    assert widget.results["refused"]["status"] == "skipped"
    assert widget.results["check"]["taken"] == ["approved"]  # the route the canvas marks
    assert widget.results["draft"]["taken"] is None  # follows every edge
    assert widget.pending == []
    assert widget.last_run is not None and widget.last_run.outputs == {"paid": "paid"}


def test_run_button_with_bad_inputs_shows_the_error(widget: GraphWidget) -> None:
    browser_message(widget, {"kind": "run", "inputs": {"amount": "lots"}})
    assert widget.run_state["status"] == "error"
    assert "inputs.amount" in widget.run_state["message"]
    assert isinstance(widget.last_error, fm_lab.WorkflowValidationError)


def test_failed_node_error_is_shown(store) -> None:
    wf = {"id": "boom", "nodes": {"f": {"type": "fail", "config": {"message": "no luck"}}}}
    widget = GraphWidget(wf, store=store)
    run = widget.run()
    assert run.status == "failed"
    assert widget.results["f"]["status"] == "failed"
    assert "no luck" in str(widget.results["f"]["error"])
    assert widget.run_state["status"] == "failed"


def test_nodes_reused_from_the_cache_stay_cached_after_the_run(store) -> None:
    wf = {"id": "twice", "nodes": {"a": {"type": "template", "config": {"template": "a"}},
                                   "b": {"type": "template", "config": {"template": "b"}}},
          "edges": [{"source": "a", "target": "b"}]}
    widget = GraphWidget(wf, store=store)
    widget.run(cache=True)
    assert {n: r["status"] for n, r in widget.results.items()} == {
        "a": "succeeded", "b": "succeeded"}
    run = widget.run(cache=True)
    assert {n: r["status"] for n, r in widget.results.items()} == {"a": "cached", "b": "cached"}
    assert run.node("a").cached_from is not None and run.node("a").status == "succeeded"


def test_unknown_message_is_reported(widget: GraphWidget) -> None:
    browser_message(widget, {"kind": "explode"})
    assert "unknown widget message kind 'explode'" in widget.run_state["message"]


def test_missing_bundle_is_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(graph_widget_module, "BUNDLE", tmp_path / "widget.js")
    with pytest.raises(BundleMissingError, match="npm --prefix js ci"):
        GraphWidget(APPROVAL_FLOW)


def test_show_displays_and_returns_the_widget(capsys) -> None:
    widget = fm_lab.widget.show(APPROVAL_FLOW, height=300)
    assert isinstance(widget, GraphWidget) and widget.height == 300
    assert "GraphWidget" in capsys.readouterr().out


@pytest.mark.parametrize(("user", "mine"), [("bob", True), ("alice", False)])
def test_the_pending_list_says_who_may_answer(store, monkeypatch, user, mine) -> None:
    wf = {"id": "assigned", "nodes": {"check": {"type": "approval", "config": {
        "message": "ok?", "assignees": ["bob"], "roles": ["finance"]}}}}
    monkeypatch.setenv("FM_LAB_USER", user)
    widget = GraphWidget(wf, store=store)
    widget.run()
    [waiting] = widget.pending
    assert (waiting["assignees"], waiting["roles"], waiting["mine"]) == (
        ["bob"], ["finance"], mine)


def test_foreach_item_suspensions_resume_one_by_one(store) -> None:
    wf = {
        "id": "approve_each",
        "nodes": {
            "loop": {"type": "foreach", "config": {
                "items": ["x", "y"],
                "node": {"type": "approval", "config": {"message": "{{ item }}?"}},
            }},
        },
    }
    widget = GraphWidget(wf, store=store)
    widget.run()
    assert widget.results["loop"]["status"] == "suspended"
    assert [(p["node"], p["path_id"]) for p in widget.pending] == [
        ("loop", "loop[0]"), ("loop", "loop[1]"),
    ]
    assert [p["payload"]["message"] for p in widget.pending] == ["x?", "y?"]
    first = widget.pending[1]
    browser_message(widget, {"kind": "resume", "run_id": first["run_id"],
                             "path_id": first["path_id"], "data": {"approved": False}})
    assert [p["path_id"] for p in widget.pending] == ["loop[0]"]
    assert widget.run_state["status"] == "suspended"
    second = widget.pending[0]
    browser_message(widget, {"kind": "resume", "run_id": second["run_id"],
                             "path_id": second["path_id"], "data": {"approved": True}})
    assert widget.run_state["status"] == "succeeded"
    assert widget.pending == []
    assert '"approved": false' in widget.results["loop"]["output"]


def test_subflow_suspension_is_shown_on_the_subflow_node(store) -> None:
    child = {"id": "child", "nodes": {"ok": {"type": "approval", "config": {"message": "ok?"}}}}
    wf = {"id": "parent", "nodes": {
        "start": {"type": "template", "config": {"template": "go"}},
        "sub": {"type": "subflow", "config": {"workflow": child}},
    }, "edges": ["start -> sub"]}
    widget = GraphWidget(wf, store=store)
    run = widget.run()
    [waiting] = widget.pending
    assert waiting["node"] == "sub" and waiting["run_id"] != run.run_id
    widget.resume({"approved": True}, run_id=waiting["run_id"], path_id=waiting["path_id"])
    assert widget.last_run is not None and widget.last_run.run_id == run.run_id
    assert widget.run_state["status"] == "succeeded"
    assert widget.results["sub"]["status"] == "succeeded"


# ---- one workflow, three views -------------------------------------------------------------
def test_a_canvas_edit_changes_the_bound_workflow_in_place(widget: GraphWidget) -> None:
    bound = widget.workflow  # what a `%%flow name` cell binds
    graph = copy.deepcopy(widget.graph)
    del graph["nodes"]["refused"]
    graph["edges"] = [e for e in graph["edges"] if e["target"] != "refused"]
    browser_edit(widget, graph)
    assert widget.workflow is bound and "refused" not in bound.nodes
    assert widget.unsaved and widget.has_unsaved_edits
    widget.mark_saved()
    assert not widget.unsaved


def test_a_run_started_elsewhere_colours_the_canvas(widget: GraphWidget,
                                                   store: fm_lab.Store) -> None:
    run = fm_lab.run(widget.workflow, {"amount": 5}, store=store, progress=False)
    assert run.status == "suspended"
    assert widget.last_run is not None and widget.last_run.run_id == run.run_id
    assert widget.results["draft"]["status"] == "succeeded"
    assert [p["node"] for p in widget.pending] == ["check"]
    assert f"last run {run.run_id}: suspended" in widget.snapshot["text"]
    assert 'data-node-id="check" data-status="suspended"' in widget.snapshot["html"]

    done = fm_lab.resume(run.run_id, {"approved": True}, label="check", store=store,
                         progress=False)
    assert done.status == "succeeded"  # a resume from elsewhere recolours it too
    assert widget.results["paid"]["status"] == "succeeded" and widget.pending == []
    assert widget.run_state["status"] == "succeeded"


def test_a_closed_canvas_stops_hearing_of_runs(widget: GraphWidget,
                                               store: fm_lab.Store) -> None:
    widget.close()
    fm_lab.run(widget.workflow, {"amount": 5}, store=store, progress=False)
    assert widget.results == {} and widget.last_run is None


def test_the_output_bundle_carries_a_static_picture(widget: GraphWidget) -> None:
    data, _ = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "fm-lab-static-graph" in data["text/html"]
    assert data["text/plain"].startswith("Workflow pay: 4 nodes, 3 edges")
    state = widget.snapshot["model_state"]
    assert state["model_module"] == "anywidget" and "static_html" in state["state"]
    assert widget.snapshot["model_id"] == widget.model_id


def test_the_cell_is_written_through_the_canvas_and_saved_on_its_answer(
        widget: GraphWidget, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="not made by a %%flow cell"):
        widget.cell_text()
    widget.cell_line = "%%flow pay"
    graph = copy.deepcopy(widget.graph)
    graph["nodes"]["draft"]["label"] = "Draft it"
    browser_edit(widget, graph)
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(widget, "send", sent.append)
    widget.write_cell()
    [message] = sent
    assert message["kind"] == "write_cell"
    assert message["text"].startswith("%%flow pay\nid: pay\n") and "Draft it" in message["text"]
    assert fm_lab.Workflow.from_yaml(message["text"].split("\n", 1)[1]) == widget.workflow
    assert widget.unsaved
    browser_message(widget, {"kind": "cell_written", "ok": False, "error": "no cell"})
    assert widget.unsaved and "no cell" in widget.run_state["message"]
    browser_message(widget, {"kind": "cell_written", "ok": True})
    assert not widget.unsaved


def test_runs_of_a_local_batch_are_shown_one_at_a_time(widget: GraphWidget,
                                                       store: fm_lab.Store) -> None:
    frame = fm_lab.batch.map(widget.workflow, [{"amount": n} for n in (1, 2, 3)],
                             concurrency=3, store=store)
    assert sorted(frame["status"]) == ["suspended"] * 3
    shown = widget.run_state["run_id"]
    assert shown in set(frame["run_id"]) and widget.last_run.run_id == shown
    [waiting] = widget.pending  # one run's suspension, not three mixed together
    assert waiting["run_id"] == shown and waiting["node"] == "check"


def test_the_canvas_of_a_workflow_is_found_from_the_workflow(store: fm_lab.Store) -> None:
    wf = fm_lab.Workflow.from_dict(copy.deepcopy(APPROVAL_FLOW))
    assert fm_lab.widget.canvas(wf) is None
    first, second = GraphWidget(wf, store=store), GraphWidget(wf, store=store)
    GraphWidget(copy.deepcopy(APPROVAL_FLOW), store=store)  # same id, another object
    assert fm_lab.widget.canvas(wf) is second
    second.close()
    assert fm_lab.widget.canvas(wf) is first


def test_a_streamed_run_colours_the_canvas_and_yields_typed_events(widget: GraphWidget) -> None:
    events = widget.stream({"amount": 12})
    kinds = [(e.kind, getattr(e, "path", None)) for e in events]
    assert kinds == [("run_started", None), ("node_started", "draft"),
                     ("node_finished", "draft"), ("node_started", "check"),
                     ("node_suspended", "check"), ("run_finished", None)]
    assert events.result().status == "suspended"
    assert widget.results["draft"]["status"] == "succeeded"
    assert widget.run_state["status"] == "suspended"
    [waiting] = widget.pending
    assert waiting["path_id"] == "check"
