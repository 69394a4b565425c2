"""``%%flow`` and ``%flow`` in a real IPython shell, on a real DuckDB file."""

from __future__ import annotations

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
