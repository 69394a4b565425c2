"""The canvas as users of n8n, ComfyUI or LangGraph Studio expect it, in a real JupyterLab:
approvals decided by explicit Approve / Reject buttons, resume and config forms that refuse
what they cannot send, undo, cycles shown on their edges, tidy layout, search, and a wheel
that scrolls the notebook until the canvas is clicked. Python state is asserted in later
cells."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.e2e.test_widget_lab import (
    FLOW,
    OpenNotebook,
    cell_output,
    drag,
    flow_position,
    node,
    rendered,
    run_cell,
    same_place,
    synced_edits,
    zoom,
)

pytestmark = pytest.mark.e2e

SUSPENDED = (  # the approval workflow, run up to the approval, on a canvas bound to `w`
    "import json, fm_lab\n"
    "from fm_lab.widget import GraphWidget\n"
    f"w = GraphWidget(json.loads({json.dumps(json.dumps(FLOW))}), height=420)\n"
    "print('FIRST_RUN_STATUS', json.dumps(w.run({'amount': 12}).status))\n"
    "w"
)
RUN = (
    "r = w.last_run\n"
    "print('RUN', json.dumps({'status': r.status, 'outputs': r.outputs,\n"
    "    'check': r.node('check').output if 'check' in r.workflow.nodes else None,\n"
    "    'ask': r.node('ask').output if 'ask' in r.workflow.nodes else None,\n"
    "    'widget': w.run_state.get('status'), 'error': repr(w.last_error)}))"
)
STATE = (
    "print('STATE', json.dumps({'nodes': sorted(w.workflow.nodes),\n"
    "    'edges': [e.model_dump(exclude_none=True) for e in w.workflow.edges],\n"
    "    'check': w.workflow.nodes['check'].config if 'check' in w.workflow.nodes else None,\n"
    "    'positions': {k: n.position.model_dump() if n.position else None\n"
    "                  for k, n in w.workflow.nodes.items()},\n"
    "    'issues': [i['message'] for i in w.issues]}))"
)


def widget_cell(flow: dict[str, Any], height: int | None = 420, run: bool = False) -> str:
    """A cell making canvas ``w`` of ``flow`` (run first when ``run``) and showing it."""
    size = "" if height is None else f", height={height}"
    first_run = "print('FIRST_RUN_STATUS', json.dumps(w.run().status))\n" if run else ""
    return ("import json, fm_lab\n"
            "from fm_lab.widget import GraphWidget\n"
            f"w = GraphWidget(json.loads({json.dumps(json.dumps(flow))}){size})\n"
            f"{first_run}w")


def edge_classes(canvas: Any) -> dict[str, str]:
    """Each drawn edge's classes by its source -> target (React Flow's aria label)."""
    return dict(canvas.locator(".react-flow__edge").evaluate_all(
        "els => els.map(e => [e.getAttribute('data-id'), e.getAttribute('class')])"))


@pytest.mark.parametrize(("button", "approved", "outputs", "taken", "dropped"), [
    ("fm-approve", True, {"paid": "paid"}, "e1", "e2"),
    ("fm-reject", False, {"refused": "refused"}, "e2", "e1"),
])
def test_approval_buttons_resume_down_their_route(
    open_notebook: OpenNotebook, button: str, approved: bool, outputs: dict[str, str],
    taken: str, dropped: str,
) -> None:
    page = open_notebook([SUSPENDED, RUN])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, len(FLOW["nodes"]))
    assert cell_output(page, 0, "FIRST_RUN_STATUS") == "suspended"
    canvas.locator('[data-node-id="check"][data-status="suspended"]').wait_for()
    node(canvas, "check").click()
    panel = canvas.locator('[data-testid="fm-node-panel"]')
    assert panel.locator('[data-testid="fm-message-text"]').inner_text() == "pay 12?"
    assert panel.locator("button[type=submit]", has_text="Resume").count() == 0  # no generic submit
    form = panel.locator('[data-testid="fm-approval-form"]')
    form.locator('textarea[name="fm-field-comment"]').fill("checked the invoice")
    form.locator(f'[data-testid="{button}"]').click()
    canvas.locator('[data-testid="fm-run-status"][data-status="succeeded"]').wait_for(
        timeout=30_000)
    classes = edge_classes(canvas)  # the route taken, and the one not taken, are drawn apart
    assert "fm-edge-taken" in classes["e0"] and "fm-edge-taken" in classes[taken]
    assert "fm-edge-not-taken" in classes[dropped], classes

    run_cell(page, 1)
    result = cell_output(page, 1, "RUN")
    assert result["status"] == "succeeded" and result["widget"] == "succeeded"
    assert result["outputs"] == outputs
    assert result["check"] == {"approved": approved, "comment": "checked the invoice", "by": None}


ASK = {
    "id": "ask",
    "nodes": {
        "ask": {"type": "user_input", "config": {"prompt": "Your review?", "schema": {
            "type": "object", "required": ["review", "ok"],
            "properties": {"review": {"type": "string"}, "ok": {"type": "boolean"}}}}},
        "done": {"type": "template", "config": {"template": "{{ nodes.ask.output.review }}"}},
    },
    "edges": [{"source": "ask", "target": "done"}],
}


def test_resume_form_refuses_an_empty_submit(open_notebook: OpenNotebook) -> None:
    page = open_notebook([
        widget_cell(ASK, run=True),
        RUN,
        RUN.replace("'RUN'", "'AGAIN'"),
    ])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, 2)
    node(canvas, "ask").click()
    form = canvas.locator('[data-testid="fm-resume-form"]')
    assert "Your review?" in canvas.locator('[data-testid="fm-message-text"]').inner_text()
    # a required boolean is an explicit yes/no choice, not an unchecked box
    assert form.locator('select[name="fm-field-ok"]').input_value() == ""
    assert form.locator('input[type="checkbox"]').count() == 0
    form.locator("button[type=submit]").click()
    assert "review is required" in form.locator('[data-field="review"]').inner_text()
    assert "choose yes or no" in form.locator('[data-field="ok"]').inner_text()
    page.wait_for_timeout(1000)  # had anything been sent, the kernel has answered by now
    run_cell(page, 1)
    before = cell_output(page, 1, "RUN")
    assert before["status"] == "suspended" and before["widget"] == "suspended", before
    assert before["error"] == "None"  # nothing reached Python (a bad resume is an error)

    form.locator('input[name="fm-field-review"]').fill("fine")
    form.locator('select[name="fm-field-ok"]').select_option("false")
    form.locator("button[type=submit]").click()
    canvas.locator('[data-testid="fm-run-status"][data-status="succeeded"]').wait_for(
        timeout=30_000)
    run_cell(page, 2)
    after = cell_output(page, 2, "AGAIN")
    assert after["ask"] == {"review": "fine", "ok": False}
    assert after["outputs"] == {"done": "fine"}


def test_bad_json_is_refused_inline_and_unapplied_edits_are_kept(
    open_notebook: OpenNotebook,
) -> None:
    page = open_notebook([widget_cell(FLOW), STATE])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, len(FLOW["nodes"]))
    node(canvas, "check").click()
    form = canvas.locator('[data-testid="fm-config-form"]')
    # approval's own config key `label` is a config field, the node label is apart
    assert canvas.locator('[data-testid="fm-node-label"]').input_value() == "Approve?"
    assert form.locator('input[name="fm-field-label"]').input_value() == ""
    form.locator('textarea[name="fm-field-details"]').fill('{"text": "{{ inputs.review }}",}')
    form.locator("button[type=submit]").click()
    error = form.locator('[data-field="details"]')
    assert error.inner_text().startswith("Details is not valid JSON: "), error.inner_text()
    assert canvas.locator('[data-testid="fm-undo"]').is_disabled()  # nothing was sent

    node(canvas, "paid").click()  # leaving with an edit that cannot be applied: kept
    canvas.locator('[data-testid="fm-unapplied"]').wait_for()
    assert "Approve?" in canvas.locator('[data-testid="fm-node-panel"] h3').inner_text()
    canvas.locator('[data-testid="fm-unapplied-discard"]').click()
    canvas.locator('[data-testid="fm-node-panel"] h3', has_text="paid").wait_for()
    assert canvas.get_attribute("data-roundtrip") is None

    node(canvas, "check").click()  # a valid edit is applied when the user moves on
    form.locator('textarea[name="fm-field-details"]').fill('{"text": "{{ inputs.amount }}"}')
    form.locator('input[name="fm-field-label"]').fill("pay-check")
    node(canvas, "paid").click()
    synced_edits(page, canvas, 1)
    assert canvas.locator('[data-testid="fm-unapplied"]').count() == 0
    run_cell(page, 1)
    state = cell_output(page, 1, "STATE")
    assert state["check"] == {"message": "{{ nodes.draft.output }}?",
                              "details": {"text": "{{ inputs.amount }}"}, "label": "pay-check"}
    assert state["issues"] == []


def test_undo_brings_a_deleted_node_back_with_its_edges(open_notebook: OpenNotebook) -> None:
    page = open_notebook([widget_cell(FLOW), STATE])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, len(FLOW["nodes"]))
    node(canvas, "check").click()
    page.keyboard.press("Delete")
    node(canvas, "check").wait_for(state="detached")
    synced_edits(page, canvas, 1)
    assert canvas.locator(".react-flow__edge").count() == 0
    cells = page.locator(".jp-Notebook .jp-Cell").count()
    page.keyboard.press("Control+z")  # 2: undo by key
    node(canvas, "check").wait_for()
    synced_edits(page, canvas, 2)
    assert page.locator(".jp-Notebook .jp-Cell").count() == cells  # the notebook kept its cells
    canvas.locator('[data-testid="fm-redo"]').click()  # 3: redo by button deletes it again
    node(canvas, "check").wait_for(state="detached")
    canvas.locator('[data-testid="fm-undo"]').click()  # 4: and undo brings it back
    node(canvas, "check").wait_for()
    synced_edits(page, canvas, 4)
    assert canvas.locator(".react-flow__edge").count() == 3
    run_cell(page, 1)
    state = cell_output(page, 1, "STATE")
    assert state["nodes"] == ["check", "draft", "paid", "refused"]
    assert state["edges"] == FLOW["edges"]
    assert state["issues"] == []


CYCLE = {
    "id": "loop",
    "nodes": {n: {"type": "log", "config": {"message": n}} for n in ("s", "a", "b", "c", "d")},
    "edges": ["s -> a", "a -> b", "b -> c", "c -> a", "c -> d"],
}


def test_a_cycle_is_highlighted_and_named(open_notebook: OpenNotebook) -> None:
    page = open_notebook([widget_cell(CYCLE),
                          "print('ISSUES', json.dumps([i['message'] for i in w.issues]))"])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, 5)
    classes = edge_classes(canvas)
    cyclic = sorted(k for k, v in classes.items() if "fm-edge-cycle" in v)
    assert cyclic == ["e1", "e2", "e3"], classes  # a -> b -> c -> a, not s -> a or c -> d
    general = canvas.locator('[data-testid="fm-general-issues"]').inner_text()
    assert "cycle a -> b -> c -> a" in general
    run_cell(page, 1)
    [message] = cell_output(page, 1, "ISSUES")
    assert message.startswith("cycle a -> b -> c -> a ("), message


def test_tidy_search_fitted_height_and_wheel(open_notebook: OpenNotebook) -> None:
    page = open_notebook([widget_cell(FLOW, height=None), STATE])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, len(FLOW["nodes"]))
    root_height = canvas.locator(".fm-root").bounding_box()["height"]
    assert 240 <= root_height < 400, root_height  # fitted to a two-row graph, not 480
    laid_out = {n: flow_position(node(canvas, n)) for n in FLOW["nodes"]}

    pane = canvas.locator(".react-flow__pane")
    box = pane.bounding_box()
    before = zoom(canvas)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -300)  # not clicked yet: the wheel is the notebook's
    page.wait_for_timeout(300)
    assert zoom(canvas) == before
    drag(page, node(canvas, "paid"), dx=80, dy=120)  # a press in the canvas: now it zooms
    synced_edits(page, canvas, 1)
    box = pane.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -300)
    page.wait_for_function("([el, z]) => new DOMMatrixReadOnly(getComputedStyle("
                           "el.querySelector('.react-flow__viewport')).transform).a !== z",
                           arg=[canvas.element_handle(), before])

    canvas.locator('[data-testid="fm-tidy"]').click()  # one move edit back to the layout
    synced_edits(page, canvas, 2)
    run_cell(page, 1)
    state = cell_output(page, 1, "STATE")
    for node_id, where in laid_out.items():
        assert same_place(state["positions"][node_id], where), (node_id, state["positions"])

    search = canvas.locator('[data-testid="fm-search"]')
    search.fill("Approve")
    search.press("Enter")
    canvas.locator('[data-testid="fm-node-panel"] h3', has_text="Approve?").wait_for()
    canvas.locator('[data-testid="rf__node-check"].selected').wait_for()
