"""Plain-text reprs for terminals (IPython's pretty printer), next to the HTML ones."""

from __future__ import annotations

from IPython.lib.pretty import pretty

import fm_lab


def _workflow() -> fm_lab.Workflow:
    return fm_lab.Workflow.from_dict(
        {
            "id": "texty",
            "nodes": {
                "a": {"type": "template", "label": "Greeting", "config": {"template": "hi"}},
                "route": {
                    "type": "branch",
                    "config": {"routes": [{"handle": "x", "when": "{{ 1 }}"}], "default": "y"},
                },
                "b": {"type": "template", "config": {"template": "b"}},
            },
            "edges": ["a -> route", "route.x -> b"],
        }
    )


def test_workflow_text():
    text = pretty(_workflow())
    assert text.splitlines()[0] == "Workflow texty (v1, 3 nodes, 2 edges)"
    assert "  a      template  Greeting" in text
    assert "edges: a -> route, route.x -> b" in text
    assert "→" in _workflow()._repr_html_()


def test_run_text_lists_every_node_with_status_and_output():
    run = fm_lab.run(_workflow(), store=fm_lab.Store(":memory:"))
    lines = pretty(run).splitlines()
    assert lines[0] == f"Run {run.run_id} of texty: succeeded"
    assert lines[1].split()[:2] == ["a", "succeeded"] and lines[1].endswith("'hi'")
    assert lines[3].split()[:2] == ["b", "succeeded"]


def test_validation_error_text_lists_every_problem():
    err = fm_lab.WorkflowValidationError(
        [
            fm_lab.ValidationIssue("nodes.a.type", "unknown x"),
            fm_lab.ValidationIssue("edges[0]", "dangling"),
        ]
    )
    assert pretty(err) == str(err)
    assert "nodes.a.type: unknown x" in pretty(err) and "edges[0]: dangling" in pretty(err)
