"""GraphWidget in a real JupyterLab: the canvas renders, canvas edits reach Python (asserted
in later cells), a run colours nodes, a suspended approval is resumed from the form, and a
200-node workflow renders (first-render time and edit round trips are reported).

Each test writes and opens its own notebook (``open_notebook``), so it passes alone and in any
order."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable
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

WIDGET = (  # the approval workflow's canvas, bound to `w`
    "import json, fm_lab\n"
    "from fm_lab.widget import GraphWidget\n"
    f"w = GraphWidget(json.loads({json.dumps(json.dumps(FLOW))}), height=420)\n"
    "w"
)
STATE = (  # what Python holds after the canvas edits
    "wf = w.workflow\n"
    "print('STATE', json.dumps({\n"
    "    'positions': {k: n.position.model_dump() if n.position else None\n"
    "                  for k, n in wf.nodes.items()},\n"
    "    'labels': {k: n.label for k, n in wf.nodes.items()},\n"
    "    'nodes': sorted(wf.nodes),\n"
    "    'edges': [e.model_dump(exclude_none=True) for e in wf.edges],\n"
    "    'draft': wf.nodes['draft'].config, 'issues': w.issues}))"
)

OpenNotebook = Callable[[list[str]], Any]


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


def drag(page: Any, source: Any, dx: float = 0, dy: float = 0, target: Any = None
         ) -> tuple[float, float]:
    """Press on ``source`` (near its top-left, clear of the minimap), move, release. Returns
    the pointer's travel after the drag started: React Flow starts a drag with the first move
    past its threshold and moves the node from there, so a 4 px pick-up step does not count."""
    source.scroll_into_view_if_needed()
    box = source.bounding_box()
    x, y = box["x"] + min(box["width"] / 2, 20), box["y"] + min(box["height"] / 2, 12)
    if target is not None:
        tbox = target.bounding_box()
        tx, ty = tbox["x"] + tbox["width"] / 2, tbox["y"] + tbox["height"] / 2
    else:
        tx, ty = x + dx, y + dy
    length = max(((tx - x) ** 2 + (ty - y) ** 2) ** 0.5, 1e-9)
    px, py = x + 4 * (tx - x) / length, y + 4 * (ty - y) / length
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(px, py)  # picks the node up
    page.mouse.move((px + tx) / 2, (py + ty) / 2, steps=5)
    page.mouse.move(tx, ty, steps=5)
    page.mouse.up()
    return tx - px, ty - py


def synced_edits(page: Any, canvas: Any, count: int) -> list[float]:
    """Wait until ``count`` canvas edits came back from Python; their round trips in ms."""
    page.wait_for_function(
        "([el, n]) => JSON.parse(el.dataset.roundtrip || '[]').length >= n",
        arg=[canvas.element_handle(), count], timeout=30_000,
    )
    return list(json.loads(canvas.get_attribute("data-roundtrip")))


def flow_position(element: Any) -> dict[str, float]:
    """A React Flow node's position in flow coordinates (its wrapper's translate)."""
    return dict(element.evaluate(
        "el => { const m = new DOMMatrixReadOnly(getComputedStyle(el).transform);"
        " return {x: m.m41, y: m.m42}; }"))


def zoom(canvas: Any) -> float:
    """The canvas's zoom: screen pixels per flow unit."""
    return float(canvas.locator(".react-flow__viewport").evaluate(
        "el => new DOMMatrixReadOnly(getComputedStyle(el).transform).a"))


def rendered(page: Any, canvas: Any, count: int) -> None:
    """Wait until ``count`` nodes are drawn, the first render is recorded and the fit-view
    transition is over."""
    canvas.wait_for(timeout=30_000)
    page.wait_for_function(
        "([el, n]) => el.querySelectorAll('.react-flow__node').length === n "
        "&& el.dataset.render",
        arg=[canvas.element_handle(), count], timeout=60_000,
    )
    page.wait_for_timeout(300)  # the fit-view transition


def assert_moved(before: dict[str, float], after: dict[str, float],
                 travel: tuple[float, float], scale: float) -> None:
    """``after`` is ``before`` moved by the pointer's ``travel`` (screen pixels) at zoom
    ``scale``, to within two screen pixels (positions are stored rounded)."""
    dx, dy = travel
    tolerance = 2 / scale
    assert abs(after["x"] - (before["x"] + dx / scale)) <= tolerance, (before, after, scale)
    assert abs(after["y"] - (before["y"] + dy / scale)) <= tolerance, (before, after, scale)


def same_place(a: dict[str, float], b: dict[str, float]) -> bool:
    return abs(a["x"] - b["x"]) <= 1 and abs(a["y"] - b["y"]) <= 1


def test_canvas_renders_the_workflow(open_notebook: OpenNotebook) -> None:
    page = open_notebook([WIDGET])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, len(FLOW["nodes"]))
    assert canvas.get_attribute("data-lm-suppress-shortcuts") == "true"
    pane = canvas.locator(".react-flow").bounding_box()
    for node_id in FLOW["nodes"]:  # every node is inside the visible canvas
        box = node(canvas, node_id).bounding_box()
        assert pane["x"] <= box["x"] and box["x"] + box["width"] <= pane["x"] + pane["width"]
        assert pane["y"] <= box["y"] and box["y"] + box["height"] <= pane["y"] + pane["height"]
    assert "Approve?" in node(canvas, "check").inner_text()
    assert canvas.locator(".react-flow__edge").count() == 3
    assert canvas.locator(".react-flow__minimap").count() == 0  # only big graphs have one
    assert canvas.locator('[data-testid="fm-issue-count"]').inner_text() == "valid"


def test_canvas_edits_reach_python(open_notebook: OpenNotebook) -> None:
    page = open_notebook([WIDGET, STATE])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, len(FLOW["nodes"]))
    scale = zoom(canvas)
    laid_out = {n: flow_position(node(canvas, n)) for n in FLOW["nodes"]}
    travel = drag(page, node(canvas, "paid"), dx=60, dy=90)  # 1: drag, committed on drop
    synced_edits(page, canvas, 1)
    dragged = flow_position(node(canvas, "paid"))
    assert_moved(laid_out["paid"], dragged, travel, scale)

    canvas.locator('[data-testid="fm-palette"]').select_option("log")  # 2: add from palette
    canvas.locator('[data-testid="fm-add"]').click()
    node(canvas, "log_1").wait_for()
    synced_edits(page, canvas, 2)
    issues = canvas.locator('[data-testid="fm-issue-count"]')
    assert issues.inner_text() == "1 issue(s)"  # a log node needs a message
    assert node(canvas, "log_1").locator(".fm-issue-badge").count() == 1

    canvas.locator(".react-flow__controls-fitview").click()  # everything in view
    page.wait_for_timeout(300)
    source = node(canvas, "paid").locator(".react-flow__handle.source")  # 3: connect
    target = node(canvas, "log_1").locator(".react-flow__handle.target")
    drag(page, source, target=target)
    synced_edits(page, canvas, 3)
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
    assert same_place(state["positions"]["paid"], dragged), (state["positions"], dragged)
    for node_id in ("draft", "check", "refused"):  # the first edit froze the auto-layout
        assert same_place(state["positions"][node_id], laid_out[node_id]), node_id
    assert state["nodes"] == ["check", "draft", "log_1", "paid", "refused"]
    assert {"source": "paid", "target": "log_1"} in state["edges"]
    assert len(state["edges"]) == 4
    assert state["draft"] == {"template": "pay {{ inputs.amount }} EUR"}
    assert state["issues"] == []
    FIGURES["edit_roundtrip_ms"] = {
        "median": statistics.median(trips), "max": max(trips), "edits": len(trips),
    }


def test_run_colours_nodes_and_approval_resumes_from_the_form(open_notebook: OpenNotebook
                                                              ) -> None:
    page = open_notebook([
        WIDGET,
        "r = w.last_run\n"
        "print('RUN', json.dumps({'status': r.status, 'outputs': r.outputs,\n"
        "    'check': r.node('check').output, 'draft': r.node('draft').output}))",
    ])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, len(FLOW["nodes"]))
    for node_id in FLOW["nodes"]:
        assert canvas.locator(f'[data-node-id="{node_id}"]').get_attribute("data-status") == "idle"
    canvas.locator('[data-testid="fm-run"]').click()
    run_form = canvas.locator('[data-testid="fm-run-form"]')
    run_form.locator('input[name="fm-field-amount"]').fill("12")
    run_form.locator("button[type=submit]").click()
    canvas.locator('[data-node-id="draft"][data-status="succeeded"]').wait_for(timeout=30_000)
    canvas.locator('[data-node-id="check"][data-status="suspended"]').wait_for(timeout=30_000)
    canvas.locator('[data-testid="fm-run-status"][data-status="suspended"]').wait_for()
    for node_id in ("paid", "refused"):  # nothing after the approval ran yet
        assert canvas.locator(f'[data-node-id="{node_id}"]').get_attribute("data-status") == "idle"

    node(canvas, "check").click()
    form = canvas.locator('[data-testid="fm-approval-form"]')
    assert canvas.locator('[data-testid="fm-message-text"]').inner_text() == "pay 12?"
    save_screenshot(canvas, "graph-editor-resume.png")
    form.locator('input[name="fm-field-by"]').fill("e2e")
    form.locator('[data-testid="fm-approve"]').click()
    canvas.locator('[data-testid="fm-run-status"][data-status="succeeded"]').wait_for(
        timeout=30_000)
    assert canvas.locator('[data-node-id="check"]').get_attribute("data-status") == "succeeded"
    assert canvas.locator('[data-node-id="paid"]').get_attribute("data-status") == "succeeded"
    assert canvas.locator('[data-node-id="refused"]').get_attribute("data-status") == "skipped"

    node(canvas, "draft").click()  # a node's output and timings in the side panel
    result_panel = canvas.locator('[data-testid="fm-result"]')
    assert "pay 12" in result_panel.inner_text()
    assert "succeeded" in result_panel.inner_text() and " ms" in result_panel.inner_text()

    run_cell(page, 1)
    result = cell_output(page, 1, "RUN")
    assert result == {"status": "succeeded", "outputs": {"paid": "paid"}, "draft": "pay 12",
                      "check": {"approved": True, "comment": None, "by": "e2e"}}

    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                  "{theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_timeout(300)
    save_screenshot(canvas, "graph-editor-dark.png")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                  "{theme: 'JupyterLab Light'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")


def test_200_nodes_render_and_stay_responsive(open_notebook: OpenNotebook) -> None:
    page = open_notebook([
        "import json\n"  # a small canvas first: the measured cell finds the bundle loaded
        "from fm_lab.widget import GraphWidget\n"
        "GraphWidget({'id': 'warm', 'nodes': {'a': {'type': 'log', 'config': {'message': 'a'}}}},\n"
        "            height=120)",
        "nodes = {f'n{i}': {'type': 'template', 'config': {'template': str(i)}}"
        f" for i in range({BIG})}}\n"
        f"edges = [f'n{{(i - 1) // 3}} -> n{{i}}' for i in range(1, {BIG})]\n"
        "big = GraphWidget({'id': 'big', 'nodes': nodes, 'edges': edges}, height=560)\n"
        "big",
        "print('BIG', json.dumps({k: n.position.model_dump()\n"
        "                         for k, n in big.workflow.nodes.items()}))",
    ])
    run_cell(page, 0)  # imports and the widget bundle, outside the measured time
    rendered(page, page.locator(".fm-lab-graph").first, 1)
    started = time.perf_counter()
    run_cell(page, 1)
    canvas = page.locator(".fm-lab-graph").nth(1)
    rendered(page, canvas, BIG)
    cell_to_canvas = (time.perf_counter() - started) * 1000 - 300  # less the fit transition
    render_ms = json.loads(canvas.get_attribute("data-render"))[0]
    assert canvas.locator(".react-flow__minimap").count() == 1  # a big graph has a minimap
    scale = zoom(canvas)
    laid_out = {f"n{i}": flow_position(node(canvas, f"n{i}")) for i in (0, 1, 100, BIG - 1)}
    travel = drag(page, node(canvas, "n0"), dx=0, dy=120)
    [trip] = synced_edits(page, canvas, 1)
    assert_moved(laid_out["n0"], flow_position(node(canvas, "n0")), travel, scale)
    run_cell(page, 2)
    positions = cell_output(page, 2, "BIG")
    assert len(positions) == BIG  # the drag froze the whole layout into positions
    assert_moved(laid_out["n0"], positions["n0"], travel, scale)
    for node_id, where in laid_out.items():  # and no other node moved
        if node_id != "n0":
            assert same_place(positions[node_id], where), (node_id, positions[node_id], where)
    FIGURES["first_render_200_nodes_ms"] = render_ms
    FIGURES["cell_run_to_200_nodes_visible_ms"] = round(cell_to_canvas)
    FIGURES["edit_roundtrip_200_nodes_ms"] = trip


def test_python_side_changes_redraw_the_canvas(open_notebook: OpenNotebook) -> None:
    page = open_notebook([
        WIDGET,
        "wf2 = w.workflow.model_copy(deep=True)\n"
        "wf2.nodes['paid'].label = 'Paid from Python'\n"
        "w.workflow = wf2",
        STATE,
    ])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, len(FLOW["nodes"]))
    assert "Paid from Python" not in node(canvas, "paid").inner_text()
    drag(page, node(canvas, "paid"), dx=60, dy=90)  # edits made in the canvas first
    synced_edits(page, canvas, 1)
    canvas.locator('[data-testid="fm-palette"]').select_option("log")
    canvas.locator('[data-testid="fm-add"]').click()
    node(canvas, "log_1").wait_for()
    synced_edits(page, canvas, 2)
    dragged = flow_position(node(canvas, "paid"))

    run_cell(page, 1)  # then a change made in Python
    canvas.locator('[data-testid="rf__node-paid"]', has_text="Paid from Python").wait_for()
    assert same_place(flow_position(node(canvas, "paid")), dragged)  # the canvas edits stay
    assert node(canvas, "log_1").count() == 1
    assert canvas.locator(".react-flow__node").count() == len(FLOW["nodes"]) + 1
    assert canvas.locator(".react-flow__edge").count() == 3

    run_cell(page, 2)
    state = cell_output(page, 2, "STATE")
    assert state["labels"]["paid"] == "Paid from Python"
    assert state["nodes"] == ["check", "draft", "log_1", "paid", "refused"]
    assert same_place(state["positions"]["paid"], dragged)


def test_statuses_update_live_while_a_cell_runs(open_notebook: OpenNotebook, lab: Lab) -> None:
    gate = lab.root / f"gate-{uuid.uuid4().hex}"  # the middle node runs until this exists
    page = open_notebook([
        "import json, os, time, fm_lab\n"
        "from fm_lab.widget import GraphWidget\n"
        "def wait_for_gate(path):\n"
        "    while not os.path.exists(path):\n"
        "        time.sleep(0.02)\n"
        "    return 'open'\n"
        "fm_lab.register_function(wait_for_gate, name='wait_for_gate')\n"
        "live = GraphWidget({'id': 'live', 'nodes': {\n"
        "    'a': {'type': 'template', 'config': {'template': 'a'}},\n"
        "    'gate': {'type': 'code', 'config': {'function': 'wait_for_gate',\n"
        f"                                        'args': {{'path': {str(gate)!r}}}}}}},\n"
        "    'b': {'type': 'template', 'config': {'template': 'b'}}},\n"
        "    'edges': ['a -> gate', 'gate -> b']}, height=260)\n"
        "live",
        "print('LIVE', json.dumps(live.run().status))",
    ])
    run_cell(page, 0)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, 3)
    run_cell(page, 1)
    canvas.locator('[data-node-id="gate"][data-status="running"]').wait_for(timeout=30_000)
    assert canvas.locator('[data-node-id="a"]').get_attribute("data-status") == "succeeded"
    assert canvas.locator('[data-node-id="b"]').get_attribute("data-status") == "idle"
    prompt = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-InputPrompt")
    assert "*" in prompt.inner_text()  # the cell is still running
    gate.touch()
    canvas.locator('[data-node-id="b"][data-status="succeeded"]').wait_for(timeout=30_000)
    assert canvas.locator('[data-node-id="gate"]').get_attribute("data-status") == "succeeded"
    assert cell_output(page, 1, "LIVE") == "succeeded"
