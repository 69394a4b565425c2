"""GraphWidget in a real JupyterLab: the canvas renders, canvas edits reach Python (asserted
in later cells), a run colours nodes, a suspended approval is resumed from the form, and a
200-node workflow renders (first-render time and edit round trips are reported)."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.conftest import FIGURES, Lab, save_screenshot

pytestmark = pytest.mark.e2e

FLOW = {
    "id": "pay",
    "inputs": {"type": "object", "required": ["amount"],
               "properties": {"amount": {"type": "integer"}}},
    "nodes": {
        "draft": {"type": "template", "label": "Draft",
                  "config": {"template": "pay {{ inputs.amount }}"}},
        "check": {"type": "approval", "label": "Approve?",
                  "config": {"message": "{{ nodes.draft.output }}?"}},
        "paid": {"type": "template", "config": {"template": "paid"}},
        "refused": {"type": "template", "config": {"template": "refused"}},
    },
    "edges": [
        {"source": "draft", "target": "check"},
        {"source": "check", "target": "paid", "source_handle": "approved"},
        {"source": "check", "target": "refused", "source_handle": "rejected"},
    ],
}
BIG = 200

CELLS = [
    # 0: the widget
    "import json, fm_lab\n"
    "from fm_lab.widget import GraphWidget\n"
    f"w = GraphWidget(json.loads({json.dumps(json.dumps(FLOW))}), height=420)\n"
    "w",
    # 1: what Python holds after the canvas edits
    "wf = w.workflow\n"
    "print('STATE', json.dumps({'paid': wf.nodes['paid'].position.model_dump()\n"
    "    if wf.nodes['paid'].position else None, 'nodes': sorted(wf.nodes),\n"
    "    'edges': [e.model_dump(exclude_none=True) for e in wf.edges],\n"
    "    'draft': wf.nodes['draft'].config, 'issues': w.issues}))",
    # 2: the run after the approval was given in the canvas
    "r = w.last_run\n"
    "print('RUN', json.dumps({'status': r.status, 'outputs': r.outputs,\n"
    "    'check': r.node('check').output}))",
    # 3: a 200-node workflow
    "nodes = {f'n{i}': {'type': 'template', 'config': {'template': str(i)}}"
    f" for i in range({BIG})}}\n"
    f"edges = [f'n{{(i - 1) // 3}} -> n{{i}}' for i in range(1, {BIG})]\n"
    "big = GraphWidget({'id': 'big', 'nodes': nodes, 'edges': edges}, height=560)\n"
    "big",
    # 4: the node dragged in the big canvas
    "print('BIG', json.dumps(big.workflow.nodes['n0'].position.model_dump()))",
    # 5: a change made in Python
    "wf2 = w.workflow.model_copy(deep=True)\n"
    "wf2.nodes['paid'].label = 'Paid from Python'\n"
    "w.workflow = wf2",
    # 6: a workflow with a slow node, run from a cell
    "live = GraphWidget({'id': 'live', 'nodes': {\n"
    "    'a': {'type': 'template', 'config': {'template': 'a'}},\n"
    "    'nap': {'type': 'sleep', 'config': {'seconds': 2}},\n"
    "    'b': {'type': 'template', 'config': {'template': 'b'}}},\n"
    "    'edges': ['a -> nap', 'nap -> b']}, height=260)\n"
    "live",
    # 7
    "print('LIVE', json.dumps(live.run().status))",
]


@pytest.fixture(scope="module")
def lab_page(lab: Lab, browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1300, "height": 950})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.console_log = console  # printed by the failure hook
    page.goto(lab.notebook("widget.ipynb", CELLS))
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                           timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
    yield page
    context.close()


def run_cell(page: Any, index: int) -> None:
    """Start executing notebook cell ``index`` (as Shift+Enter would); does not wait for it."""
    page.evaluate(
        """async (index) => {
            const panel = window.jupyterapp.shell.currentWidget;
            await panel.sessionContext.ready;
            panel.content.activeCellIndex = index;
            void window.jupyterapp.commands.execute('notebook:run-cell');
        }""",
        index,
    )


def cell_output(page: Any, index: int, marker: str) -> Any:
    """The JSON a cell printed after ``marker``."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    out = cell.locator(".jp-OutputArea-output", has_text=marker)
    out.wait_for(timeout=30_000)
    text = out.inner_text()
    return json.loads(text.split(marker, 1)[1].strip())


def node(canvas: Any, node_id: str) -> Any:
    return canvas.locator(f'[data-testid="rf__node-{node_id}"]')


def drag(page: Any, source: Any, dx: float = 0, dy: float = 0, target: Any = None) -> None:
    """Press on ``source`` (near its top-left, clear of the minimap), move, release."""
    source.scroll_into_view_if_needed()
    box = source.bounding_box()
    x, y = box["x"] + min(box["width"] / 2, 20), box["y"] + min(box["height"] / 2, 12)
    if target is not None:
        tbox = target.bounding_box()
        tx, ty = tbox["x"] + tbox["width"] / 2, tbox["y"] + tbox["height"] / 2
    else:
        tx, ty = x + dx, y + dy
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move((x + tx) / 2, (y + ty) / 2, steps=5)
    page.mouse.move(tx, ty, steps=5)
    page.mouse.up()


def synced_edits(page: Any, canvas: Any, count: int) -> list[float]:
    """Wait until ``count`` canvas edits came back from Python; their round trips in ms."""
    page.wait_for_function(
        "([el, n]) => JSON.parse(el.dataset.roundtrip || '[]').length >= n",
        arg=[canvas.element_handle(), count], timeout=30_000,
    )
    return list(json.loads(canvas.get_attribute("data-roundtrip")))


def test_canvas_renders_the_workflow(lab_page: Any) -> None:
    page = lab_page
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    canvas.wait_for(timeout=30_000)
    assert canvas.get_attribute("data-lm-suppress-shortcuts") == "true"
    for node_id in FLOW["nodes"]:
        node(canvas, node_id).wait_for(timeout=30_000)
    page.wait_for_function("el => el.dataset.render", arg=canvas.element_handle())
    page.wait_for_timeout(300)  # the fit-view transition
    pane = canvas.locator(".react-flow").bounding_box()
    for node_id in FLOW["nodes"]:  # every node is inside the visible canvas
        box = node(canvas, node_id).bounding_box()
        assert pane["x"] <= box["x"] and box["x"] + box["width"] <= pane["x"] + pane["width"]
        assert pane["y"] <= box["y"] and box["y"] + box["height"] <= pane["y"] + pane["height"]
    assert "Approve?" in node(canvas, "check").inner_text()
    assert canvas.locator(".react-flow__edge").count() == 3
    assert canvas.locator(".react-flow__minimap").count() == 1
    assert canvas.locator('[data-testid="fm-issue-count"]').inner_text() == "valid"


def test_canvas_edits_reach_python(lab_page: Any) -> None:
    page = lab_page
    canvas = page.locator(".fm-lab-graph").first
    before = node(canvas, "paid").bounding_box()
    drag(page, node(canvas, "paid"), dx=60, dy=90)  # 1: drag, committed on drop
    synced_edits(page, canvas, 1)
    after = node(canvas, "paid").bounding_box()
    assert after["y"] > before["y"] + 40

    canvas.locator('[data-testid="fm-palette"]').select_option("log")  # 2: add from palette
    canvas.locator('[data-testid="fm-add"]').click()
    node(canvas, "log_1").wait_for()
    synced_edits(page, canvas, 2)
    issues = canvas.locator('[data-testid="fm-issue-count"]')
    assert issues.inner_text() == "1 issue(s)"  # a log node needs a message
    assert node(canvas, "log_1").locator(".fm-issue-badge").count() == 1

    canvas.locator(".react-flow__controls-fitview").click()  # everything in view, and
    minimap = canvas.locator(".react-flow__minimap")  # nothing under the minimap
    minimap.evaluate("el => { el.style.visibility = 'hidden'; }")
    page.wait_for_timeout(300)
    source = node(canvas, "paid").locator(".react-flow__handle.source")  # 3: connect
    target = node(canvas, "log_1").locator(".react-flow__handle.target")
    drag(page, source, target=target)
    synced_edits(page, canvas, 3)
    minimap.evaluate("el => { el.style.visibility = 'visible'; }")
    assert canvas.locator(".react-flow__edge").count() == 4

    canvas.locator('[data-testid="fm-add"]').click()  # 4: add another and delete it by key
    node(canvas, "log_2").click()
    cells = page.locator(".jp-Notebook .jp-Cell").count()
    page.keyboard.press("Delete")
    node(canvas, "log_2").wait_for(state="detached")
    page.keyboard.press("d")  # notebook shortcuts ("d d" deletes a cell) stay out of the canvas
    page.keyboard.press("d")
    assert page.locator(".jp-Notebook .jp-Cell").count() == cells
    synced_edits(page, canvas, 5)

    node(canvas, "log_1").click()  # 5: config forms in the side panel
    form = canvas.locator('[data-testid="fm-config-form"]')
    form.locator('textarea[name="fm-field-message"]').fill("paid {{ inputs.amount }}")
    form.locator("button[type=submit]").click()
    synced_edits(page, canvas, 6)
    page.wait_for_function("el => el.innerText === 'valid'", arg=issues.element_handle())
    node(canvas, "draft").click()
    form.locator('textarea[name="fm-field-template"]').fill("pay {{ inputs.amount }} EUR")
    form.locator("button[type=submit]").click()
    trips = synced_edits(page, canvas, 7)
    save_screenshot(canvas, "graph-editor.png")

    run_cell(page, 1)
    state = cell_output(page, 1, "STATE")
    assert state["paid"] is not None
    assert state["nodes"] == ["check", "draft", "log_1", "paid", "refused"]
    assert {"source": "paid", "target": "log_1"} in state["edges"]
    assert state["draft"] == {"template": "pay {{ inputs.amount }} EUR"}
    assert state["issues"] == []
    FIGURES["edit_roundtrip_ms"] = {
        "median": statistics.median(trips), "max": max(trips), "edits": len(trips),
    }


def test_run_colours_nodes_and_approval_resumes_from_the_form(lab_page: Any) -> None:
    page = lab_page
    canvas = page.locator(".fm-lab-graph").first
    canvas.locator('[data-testid="fm-run"]').click()
    run_form = canvas.locator('[data-testid="fm-run-form"]')
    run_form.locator('input[name="fm-field-amount"]').fill("12")
    run_form.locator("button[type=submit]").click()
    canvas.locator('[data-node-id="draft"][data-status="succeeded"]').wait_for(timeout=30_000)
    canvas.locator('[data-node-id="check"][data-status="suspended"]').wait_for(timeout=30_000)
    canvas.locator('[data-testid="fm-run-status"][data-status="suspended"]').wait_for()

    node(canvas, "check").click()
    form = canvas.locator('[data-testid="fm-resume-form"]')
    assert "pay 12 EUR?" in canvas.locator(".fm-payload").inner_text()
    save_screenshot(canvas, "graph-editor-resume.png")
    form.locator('input[name="fm-field-approved"]').check()
    form.locator('input[name="fm-field-by"]').fill("e2e")
    form.locator("button[type=submit]").click()
    canvas.locator('[data-node-id="log_1"][data-status="succeeded"]').wait_for(timeout=30_000)
    assert canvas.locator('[data-node-id="paid"]').get_attribute("data-status") == "succeeded"
    assert canvas.locator('[data-node-id="refused"]').get_attribute("data-status") == "skipped"
    canvas.locator('[data-testid="fm-run-status"][data-status="succeeded"]').wait_for()

    node(canvas, "draft").click()  # a node's output and timings in the side panel
    result_panel = canvas.locator('[data-testid="fm-result"]')
    assert "pay 12 EUR" in result_panel.inner_text()
    assert "succeeded" in result_panel.inner_text() and " ms" in result_panel.inner_text()

    run_cell(page, 2)
    result = cell_output(page, 2, "RUN")
    assert result["status"] == "succeeded"
    assert result["check"] == {"approved": True, "comment": None, "by": "e2e"}
    assert "paid 12" in json.dumps(result["outputs"]["log_1"])  # the sink node logged

    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                  "{theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_timeout(300)
    save_screenshot(canvas, "graph-editor-dark.png")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                  "{theme: 'JupyterLab Light'})")


def test_200_nodes_render_and_stay_responsive(lab_page: Any) -> None:
    page = lab_page
    started = time.perf_counter()
    run_cell(page, 3)
    canvas = page.locator(".fm-lab-graph").nth(1)
    canvas.wait_for(timeout=30_000)
    page.wait_for_function(
        "([el, n]) => el.querySelectorAll('.react-flow__node').length === n "
        "&& el.dataset.render",
        arg=[canvas.element_handle(), BIG], timeout=60_000,
    )
    cell_to_canvas = (time.perf_counter() - started) * 1000
    render_ms = json.loads(canvas.get_attribute("data-render"))[0]
    drag(page, node(canvas, "n0"), dx=0, dy=120)
    [trip] = synced_edits(page, canvas, 1)
    run_cell(page, 4)
    moved = cell_output(page, 4, "BIG")
    assert moved["y"] != 0 or moved["x"] != 0
    FIGURES["first_render_200_nodes_ms"] = render_ms
    FIGURES["cell_run_to_200_nodes_visible_ms"] = round(cell_to_canvas)
    FIGURES["edit_roundtrip_200_nodes_ms"] = trip


def test_python_side_changes_redraw_the_canvas(lab_page: Any) -> None:
    page = lab_page
    canvas = page.locator(".fm-lab-graph").first
    run_cell(page, 5)
    canvas.locator('[data-testid="rf__node-paid"]', has_text="Paid from Python").wait_for()


def test_statuses_update_live_while_a_cell_runs(lab_page: Any) -> None:
    page = lab_page
    run_cell(page, 6)
    canvas = page.locator(".fm-lab-graph").nth(2)
    node(canvas, "nap").wait_for(timeout=30_000)
    run_cell(page, 7)
    canvas.locator('[data-node-id="nap"][data-status="running"]').wait_for(timeout=30_000)
    assert canvas.locator('[data-node-id="a"]').get_attribute("data-status") == "succeeded"
    assert canvas.locator('[data-node-id="b"]').get_attribute("data-status") == "idle"
    prompt = page.locator(".jp-Notebook .jp-Cell").nth(7).locator(".jp-InputPrompt")
    assert "*" in prompt.inner_text()  # the cell is still running
    canvas.locator('[data-node-id="b"][data-status="succeeded"]').wait_for(timeout=30_000)
    assert cell_output(page, 7, "LIVE") == "succeeded"
