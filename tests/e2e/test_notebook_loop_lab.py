"""The notebook loop in a real JupyterLab: a ``%%flow`` cell, its canvas and its variable are
one workflow; ``%flow save`` writes canvas edits back into the cell; a run started in another
cell colours the canvas; a notebook saved and reopened with a new kernel shows the static
picture of the graph (not "model not found") until the cell is run again."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.e2e.conftest import Lab, save_screenshot
from tests.e2e.test_widget_lab import cell_output, node, rendered, run_cell

pytestmark = pytest.mark.e2e
OpenNotebook = Callable[[list[str]], Any]

SETUP = "%load_ext fm_lab\nimport json, fm_lab"
FLOW_CELL = (
    "%%flow tri\n"
    "id: tri\n"
    "nodes:\n"
    "  a: {type: template, config: {template: 'A'}}\n"
    "  b: {type: template, config: {template: '{{ nodes.a.output }}B'}}\n"
    "  c: {type: template, config: {template: '{{ nodes.b.output }}C'}}\n"
    "edges: [a -> b, b -> c]"
)
NODES_CELL = "print('NODES', json.dumps(sorted(tri.nodes)))"
RUN_CELL = (
    "r = fm_lab.run(tri, progress=False)\n"
    "print('RUN', json.dumps({'nodes': sorted(tri.nodes), 'status': r.status,\n"
    "                         'ran': sorted(r.nodes_df()['node_id'])}))"
)


def cell_source(page: Any, index: int) -> str:
    return str(page.evaluate(
        "(i) => window.jupyterapp.shell.currentWidget.content.widgets[i]"
        ".model.sharedModel.getSource()", index))


def wait_idle(page: Any) -> None:
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session"
        ".kernel.status === 'idle'", timeout=60_000)


def c_deleted_on_the_canvas(open_notebook: OpenNotebook, *more_cells: str) -> tuple[Any, Any]:
    """A notebook with the ``%%flow tri`` cell run and node ``c`` deleted on its canvas (the
    edit has reached Python); returns the page and the canvas."""
    page = open_notebook([SETUP, FLOW_CELL, *more_cells])
    run_cell(page, 0)
    run_cell(page, 1)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, 3)
    node(canvas, "c").click()
    page.keyboard.press("Delete")
    node(canvas, "c").wait_for(state="detached")
    page.wait_for_function("el => JSON.parse(el.dataset.roundtrip || '[]').length >= 1",
                           arg=canvas.element_handle(), timeout=30_000)
    return page, canvas


def test_a_canvas_edit_is_what_the_variable_runs_and_save_writes_it_into_the_cell(
        open_notebook: OpenNotebook) -> None:
    page, canvas = c_deleted_on_the_canvas(open_notebook, RUN_CELL, "%flow save tri")

    run_cell(page, 2)  # the variable is the canvas's workflow
    result = cell_output(page, 2, "RUN")
    assert result == {"nodes": ["a", "b"], "status": "succeeded", "ran": ["a", "b"]}
    # the run from another cell coloured the canvas
    canvas.locator('[data-node-id="b"][data-status="succeeded"]').wait_for(timeout=30_000)

    assert "c:" in cell_source(page, 1)
    run_cell(page, 3)  # %flow save tri: the cell now holds the edited graph
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.content.widgets[1]"
        ".model.sharedModel.getSource().includes(' c:')", timeout=30_000)
    text = cell_source(page, 1)
    assert text.startswith("%%flow tri\n"), text
    assert "  a:" in text and "  b:" in text and "nodes.b.output" not in text
    wait_idle(page)
    run_cell(page, 1)  # re-running the saved cell gives the same two nodes, nothing unsaved
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, 2)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    assert "unsaved" not in cell.locator(".jp-OutputArea").inner_text()


def test_rerunning_a_cell_with_unsaved_edits_keeps_them_and_says_so(
        open_notebook: OpenNotebook) -> None:
    page, canvas = c_deleted_on_the_canvas(open_notebook, NODES_CELL)
    run_cell(page, 1)  # the cell's text is unchanged: the edits are kept, and said
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    cell.locator(".jp-OutputArea-output", has_text="kept the canvas's unsaved edits").wait_for(
        timeout=30_000)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, 2)
    run_cell(page, 2)
    assert cell_output(page, 2, "NODES") == ["a", "b"]

    canvas.locator('[data-testid="fm-unsaved"]').wait_for()  # the toolbar says so too
    canvas.locator('[data-testid="fm-save"]').click()  # and its Save button writes the cell
    canvas.locator('[data-testid="fm-unsaved"]').wait_for(state="detached", timeout=30_000)
    text = cell_source(page, 1)
    assert text.startswith("%%flow tri\n") and " c:" not in text and "  b:" in text


def test_a_reopened_notebook_shows_the_static_graph_until_the_cell_runs_again(
        open_notebook: OpenNotebook, lab: Lab) -> None:
    page = open_notebook([SETUP, FLOW_CELL, RUN_CELL])
    for index in range(3):
        run_cell(page, index)
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, 3)
    cell_output(page, 2, "RUN")
    canvas.locator('[data-node-id="c"][data-status="succeeded"]').wait_for(timeout=30_000)
    wait_idle(page)
    page.wait_for_function(  # the picture of the finished run reaches the notebook
        "() => JSON.stringify(window.jupyterapp.shell.currentWidget.context.model"
        ".getMetadata('widgets') || {}).includes(' succeeded<')", timeout=30_000)
    path = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)

    saved = json.loads((lab.root / path).read_text())
    [bundle] = [o["data"] for o in saved["cells"][1]["outputs"] if "data" in o]
    picture = "".join(bundle["text/html"])  # what GitHub and nbviewer show
    assert "fm-lab-static-graph" in picture
    assert 'data-status="succeeded"' in picture
    assert "Workflow tri: 3 nodes" in "".join(bundle["text/plain"])

    lab.shutdown_kernels()
    page.context.close()
    reopened = open_notebook_again(open_notebook, lab, path)
    output = reopened.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea")
    output.locator("svg.fm-lab-static-graph").wait_for(timeout=60_000)
    assert "model not found" not in output.inner_text()
    assert output.locator('g[data-node-id="c"][data-status="succeeded"]').count() == 1
    save_screenshot(output, "static-graph-reopened.png", fit=False)

    run_cell(reopened, 0)  # running the cell again brings the live canvas back
    run_cell(reopened, 1)
    rendered(reopened, reopened.locator(".fm-lab-graph").first, 3)


def open_notebook_again(open_notebook: OpenNotebook, lab: Lab, path: str) -> Any:
    """Open the saved notebook ``path`` in a new browser context (a new kernel starts)."""
    page = open_notebook([])  # a new context and page; then go to the saved notebook
    page.goto(f"{lab.url}/lab/tree/{path}?token={lab.token}&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(
        "window.jupyterapp && window.jupyterapp.shell.currentWidget "
        "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
        "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
        timeout=60_000)
    return page


def test_unsaved_canvas_edits_outlive_a_kernel_restart(open_notebook: OpenNotebook) -> None:
    page, canvas = c_deleted_on_the_canvas(open_notebook, NODES_CELL)
    canvas.locator('[data-testid="fm-unsaved"]').wait_for(timeout=30_000)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session"
                  ".kernel.restart()")
    wait_idle(page)
    run_cell(page, 0)
    run_cell(page, 1)  # a new kernel: the cell's text has three nodes again...
    canvas = page.locator(".fm-lab-graph").first
    rendered(page, canvas, 3)
    bar = canvas.locator('[data-testid="fm-restore-bar"]')  # ...and the canvas offers the edits
    bar.wait_for(timeout=30_000)
    assert "2 nodes" in bar.inner_text()
    canvas.locator('[data-testid="fm-restore"]').click()
    node(canvas, "c").wait_for(state="detached", timeout=30_000)
    canvas.locator('[data-testid="fm-unsaved"]').wait_for(timeout=30_000)
    wait_idle(page)
    run_cell(page, 2)
    assert cell_output(page, 2, "NODES") == ["a", "b"]
