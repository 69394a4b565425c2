"""``%%flow`` and ``%flow`` in a real IPython shell, on a real DuckDB file."""

from __future__ import annotations

import copy
import sys

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import fm_lab
from fm_lab.magics import FlowUsageError

CELL = """
id: greet
inputs: {type: object, required: [who], properties: {who: {type: string}}}
nodes:
  hello: {type: template, config: {template: "Hello {{ inputs.who }}"}}
  ok: {type: approval, config: {message: "send {{ nodes.hello.output }}?", label: send}}
edges: [hello -> ok]
outputs: {text: "{{ nodes.hello.output }}", approved: "{{ nodes.ok.output.approved }}"}
"""


@pytest.fixture
def shell(tmp_path, monkeypatch):
    fm_lab.connect(tmp_path / "fm_lab.duckdb")
    # IPython makes its user namespace sys.modules["__main__"] (a module without __spec__,
    # which breaks multiprocessing's spawn in any later test): put the real one back after
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "fm_lab")
    yield ip
    ip.user_ns.clear()
    InteractiveShell.clear_instance()
    fm_lab.connect(":memory:")


def test_flow_cell_binds_runs_and_line_magics_mirror_the_cli(shell):
    shell.user_ns["who"] = {"who": "Ada"}
    run = shell.run_cell_magic("flow", "greeter --run --inputs {who} --no-widget", CELL)
    assert isinstance(shell.user_ns["greeter"], fm_lab.Workflow)
    assert run is shell.user_ns["greeter_run"] and run.status == "suspended"

    waiting = shell.run_line_magic("flow", f"pending {run.run_id}")
    assert isinstance(waiting, pd.DataFrame) and list(waiting["label"]) == ["send"]
    done = shell.run_line_magic(
        "flow", f"resume {run.run_id} --label send --data '{{\"approved\": true}}'"
    )
    assert done.status == "succeeded"
    assert done.outputs == {"text": "Hello Ada", "approved": True}

    runs = shell.run_line_magic("flow", "runs --status succeeded")
    assert list(runs["run_id"]) == [run.run_id]
    assert shell.run_line_magic("flow", f"show {run.run_id}").status == "succeeded"
    spans = shell.run_line_magic("flow", f"traces --run {run.run_id}")
    assert {"workflow", "node"} <= set(spans["kind"])
    again = shell.run_line_magic("flow", 'run greeter --inputs \'{"who": "Bob"}\'')
    assert again.node("hello").output == "Hello Bob"
    rerun = shell.run_line_magic("flow", f"rerun {again.run_id} hello")
    assert rerun.run_id != again.run_id and rerun.status == "suspended"


def test_rerunning_the_cell_replaces_the_definition(shell):
    shell.run_cell_magic("flow", "--no-widget", CELL)
    first = shell.user_ns["greet"]
    shell.run_cell_magic("flow", "--no-widget", CELL.replace("Hello", "Hi"))
    assert shell.user_ns["greet"] is not first
    assert "Hi {{" in shell.user_ns["greet"].nodes["hello"].config["template"]


def test_invalid_cells_show_every_problem_and_bind_nothing(shell, capsys):
    bad = "id: bad\nnodes:\n  a: {type: nope}\n  b: {type: template, config: {}}\nedges: [a -> c]\n"
    assert shell.run_cell_magic("flow", "bad --run --no-widget", bad) is None
    shown = capsys.readouterr().out
    for problem in ("nope", "template", "c"):
        assert problem in shown
    assert "bad_run" not in shell.user_ns


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "usage"),
        ("explode", "usage"),
        ("runs --colour red", "unknown option --colour"),
        ("run greet --inputs {nowhere}", "no variable 'nowhere'"),
        ("run greet --inputs {oops", "not JSON"),
    ],
)
def test_bad_lines_say_how_to_write_them(shell, line, message):
    with pytest.raises(FlowUsageError, match=message):
        shell.run_line_magic("flow", line)


def test_the_flow_cell_shows_the_graph_editor_and_a_rerun_replaces_it(shell, monkeypatch):
    from fm_lab.widget import GraphWidget

    shown = []
    monkeypatch.setattr(shell.display_pub, "publish",
                        lambda data, metadata=None, **kwargs: shown.append(data))
    magics = shell.magics_manager.registry["FlowMagics"]
    assert shell.run_cell_magic("flow", "", CELL) is None  # the widget is the cell's output
    first = magics.widgets["greet"]
    assert isinstance(first, GraphWidget) and first.comm is not None
    assert first.workflow.model_dump() == shell.user_ns["greet"].model_dump()
    first_id = first.model_id
    assert [d["application/vnd.jupyter.widget-view+json"]["model_id"] for d in shown] == [
        first_id]

    shell.run_cell_magic("flow", "", CELL.replace("Hello", "Hi"))  # re-running the cell
    second = magics.widgets["greet"]
    assert second is not first and second.comm is not None
    assert first.comm is None  # the old editor is closed, not left behind
    assert "Hi {{" in second.workflow.nodes["hello"].config["template"]
    assert [d["application/vnd.jupyter.widget-view+json"]["model_id"] for d in shown] == [
        first_id, second.model_id]
    assert list(magics.widgets) == ["greet"]

    shell.user_ns["who"] = {"who": "Ada"}  # --run with the widget: shows it, then runs
    run = shell.run_cell_magic("flow", "--run --inputs {who}", CELL)
    assert run.status == "suspended" and run is shell.user_ns["greet_run"]
    assert second.comm is None and magics.widgets["greet"].comm is not None
    assert len(shown) == 3


# ---- the canvas of a %%flow cell: saving its edits, re-running the cell ------------------------
SMALL = """id: small
nodes:
  a: {type: template, config: {template: "A"}}
  b: {type: template, config: {template: "{{ nodes.a.output }}B"}}
edges: [a -> b]
"""


def canvas_of(shell, name):
    return shell.magics_manager.registry["FlowMagics"].widgets[name]


def delete_b_on_the_canvas(widget):
    graph = copy.deepcopy(widget.graph)
    del graph["nodes"]["b"]
    graph["edges"] = []
    widget.set_state({"graph": graph, "edit_seq": widget.edit_seq + 1})


def test_save_to_a_file_writes_the_bound_workflow(shell, tmp_path):
    shell.run_cell_magic("flow", "small --no-widget", SMALL)
    shell.run_line_magic("flow", f"save small --to {tmp_path / 'small.yaml'}")
    shell.run_line_magic("flow", f"save small --to {tmp_path / 'small.json'}")
    for name in ("small.yaml", "small.json"):
        assert fm_lab.Workflow.from_file(tmp_path / name) == shell.user_ns["small"]
    assert (tmp_path / "small.json").read_text().lstrip().startswith("{")
    with pytest.raises(FlowUsageError, match="--to FILE"):
        shell.run_line_magic("flow", "save small")  # no canvas to write a cell through
    with pytest.raises(FlowUsageError, match="no workflow 'nothing'"):
        shell.run_line_magic("flow", f"save nothing --to {tmp_path / 'x.yaml'}")


def test_save_asks_the_canvas_to_write_its_cell(shell, monkeypatch):
    shell.run_cell_magic("flow", "small", SMALL)
    widget = canvas_of(shell, "small")
    delete_b_on_the_canvas(widget)
    sent = []
    monkeypatch.setattr(widget, "send", sent.append)
    shell.run_line_magic("flow", "save small")
    [message] = sent
    assert message["kind"] == "write_cell" and message["text"].startswith("%%flow small\n")
    assert " b:" not in message["text"]


def test_rerunning_an_unchanged_cell_keeps_unsaved_canvas_edits_and_says_so(shell, capsys):
    shell.run_cell_magic("flow", "small", SMALL)
    bound = shell.user_ns["small"]
    delete_b_on_the_canvas(canvas_of(shell, "small"))
    assert sorted(bound.nodes) == ["a"]  # the variable is the canvas's workflow

    shell.run_cell_magic("flow", "small", SMALL)
    assert "kept the canvas's unsaved edits" in capsys.readouterr().out
    assert sorted(shell.user_ns["small"].nodes) == ["a"]
    assert canvas_of(shell, "small").unsaved  # still not in the cell

    shell.run_cell_magic("flow", "small --discard-edits", SMALL)
    assert "discarded" in capsys.readouterr().out
    assert sorted(shell.user_ns["small"].nodes) == ["a", "b"]


def test_a_changed_cell_wins_and_the_edits_are_kept_aside(shell, capsys):
    shell.run_cell_magic("flow", "small", SMALL)
    delete_b_on_the_canvas(canvas_of(shell, "small"))
    shell.run_cell_magic("flow", "small", SMALL.replace('"A"', '"AA"'))
    assert "small_unsaved" in capsys.readouterr().out
    assert sorted(shell.user_ns["small"].nodes) == ["a", "b"]
    assert sorted(shell.user_ns["small_unsaved"].nodes) == ["a"]
    assert not canvas_of(shell, "small").unsaved
