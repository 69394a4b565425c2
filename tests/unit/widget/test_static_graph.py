"""The static picture of a canvas: layout, statuses, edges, escaping and the text summary."""

from __future__ import annotations

import re
from typing import Any

import fm_lab
from fm_lab.palette import status_colour
from fm_lab.widget.static_graph import edge_state, graph_html, graph_svg, graph_text, layout

CHAIN: dict[str, Any] = {
    "id": "chain",
    "nodes": {
        "a": {"type": "template", "config": {"template": "a"}},
        "route": {"type": "branch", "config": {"routes": {"yes": "{{ true }}"}}},
        "b": {"type": "template", "config": {"template": "b"}},
        "c": {"type": "template", "config": {"template": "c"}},
    },
    "edges": ["a -> route", {"source": "route", "target": "b", "source_handle": "yes"},
              {"source": "route", "target": "c", "source_handle": "default"}],
}


def wf(data: dict[str, Any]) -> fm_lab.Workflow:
    return fm_lab.Workflow.from_dict(data)


def test_layers_follow_the_edges_left_to_right() -> None:
    boxes = layout(wf(CHAIN))
    assert boxes["a"].x < boxes["route"].x < boxes["b"].x
    assert boxes["b"].x == boxes["c"].x and boxes["b"].y != boxes["c"].y


def test_stored_positions_are_the_canvas_layout() -> None:
    data = {**CHAIN, "nodes": {k: {**v, "position": {"x": i * 7, "y": -i}}
                               for i, (k, v) in enumerate(CHAIN["nodes"].items())}}
    boxes = layout(wf(data))
    assert (boxes["b"].x, boxes["b"].y) == (14, -2)


def test_a_cycle_is_laid_out_without_looping_forever() -> None:
    data = {"id": "loop", "nodes": {k: {"type": "template", "config": {"template": k}}
                                    for k in "xyz"},
            "edges": ["x -> y", "y -> z", "z -> x"]}
    boxes = layout(wf(data))
    assert sorted(boxes) == ["x", "y", "z"]
    assert len({(b.x, b.y) for b in boxes.values()}) == 3  # no two nodes in one place


def test_statuses_fill_nodes_with_the_shared_palette() -> None:
    results = {"a": {"status": "succeeded"}, "route": {"status": "failed"}}
    svg = graph_svg(wf(CHAIN), results, pending_nodes={"b"})
    assert re.search(r'data-node-id="a" data-status="succeeded"', svg)
    assert 'data-node-id="b" data-status="suspended"' in svg
    assert 'data-node-id="c" data-status="idle"' in svg
    for status in ("succeeded", "failed", "suspended"):
        assert status_colour(status) in svg
    assert status_colour("suspended") != status_colour("failed")
    assert svg.count("<path class=\"fm-edge") == 3 and 'marker-end="url(#fm-arrow)"' in svg


def test_taken_and_not_taken_edges_differ() -> None:
    assert edge_state("succeeded", "succeeded") == "taken"
    assert edge_state("succeeded", "skipped") == "not-taken"
    assert edge_state(None, None) == "idle"
    results = {k: {"status": "succeeded"} for k in ("a", "route", "b")}
    results["c"] = {"status": "skipped"}
    svg = graph_svg(wf(CHAIN), results)
    assert svg.count("fm-edge-taken") == 2 and svg.count("fm-edge-not-taken") == 1


def test_labels_are_escaped() -> None:
    data = {"id": "x", "nodes": {"a": {"type": "template", "label": "<script>alert(1)</script>",
                                       "config": {"template": "a"}}}}
    html = graph_html(wf(data), run={"run_id": "<r>", "status": "failed"})
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;r&gt;" in html


def test_text_summary_names_the_run_and_each_node() -> None:
    text = graph_text(wf(CHAIN), {"a": {"status": "succeeded"}},
                      run={"run_id": "r1", "status": "succeeded"})
    lines = text.splitlines()
    assert lines[0] == "Workflow chain: 4 nodes, 3 edges; last run r1: succeeded"
    assert re.match(r"\s+a\s+template\s+succeeded\s+-> route$", lines[1])
    assert "b [yes], c [default]" in lines[2]
