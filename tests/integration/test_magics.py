"""``%%flow`` and ``%flow`` in a real IPython shell, on a real DuckDB file."""

from __future__ import annotations

import copy
import sys

import pandas as pd
import pytest
from IPython.core.error import UsageError
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
        ("", "the following arguments are required: COMMAND\nusage: %flow"),
        ("explode", "invalid choice: 'explode'"),
        ("runs --colour red", "unrecognized arguments: --colour red\nusage: %flow runs"),
        ("run greet --inputs {nowhere}", "no variable 'nowhere'"),
        ("run greet --inputs {oops", "--inputs: .*not JSON and not {variable}: '{oops'"),
        ("run greet --inputs '[1]'", "--inputs must be a JSON object"),
        ("run nowhere", "no workflow 'nowhere': not a Workflow variable"),
        ("show $nowhere", r"\$nowhere: no variable 'nowhere'"),
        ("rerun {greet_run.run_id} nope", "workflow 'greet' has no node 'nope'"),
        ("show 'abc", "No closing quotation"),
    ],
)
def test_bad_lines_say_how_to_write_them(shell, line, message):
    shell.run_cell_magic("flow", "--no-widget --run --inputs '{\"who\": \"Ada\"}'", CELL)
    with pytest.raises(FlowUsageError, match=message) as caught:
        shell.run_line_magic("flow", line)
    assert isinstance(caught.value, UsageError)  # IPython shows it without a traceback


def test_variables_expand_like_in_other_magics(shell):
    params = {"who": "Ada"}
    shell.user_ns["params"] = params
    run = shell.run_cell_magic("flow", "--no-widget --run --inputs $params", CELL)
    assert run.node("hello").output == "Hello Ada"
    shell.user_ns.update(rid=run.run_id, run=run)
    for line in ("show $rid", "show {rid}", "show $run.run_id", "show {run.run_id}",
                 "show {rid!s}", "show '$rid'"):
        assert shell.run_line_magic("flow", line).run_id == run.run_id, line
    pending = shell.run_line_magic("flow", "pending $rid")
    assert list(pending["label"]) == ["send"]
    done = shell.run_line_magic("flow", "resume $rid --label {pending.label[0]} "
                                        "--data {dict(approved=True)}")
    assert done.outputs == {"text": "Hello Ada", "approved": True}
    # a JSON word is literal (IPython would evaluate it as Python): "$" and braces stay
    again = shell.run_line_magic("flow", 'run greet --inputs=\'{"who": "$rid {x}"}\'')
    assert again.node("hello").output == "Hello $rid {x}"
    assert shell.run_line_magic("flow", "run greet --input who=$$rid").node(
        "hello").output == "Hello $rid"


def test_variables_of_the_calling_function_expand_too(shell):
    shell.run_cell_magic("flow", "--no-widget --run --inputs '{\"who\": \"Ada\"}'", CELL)

    def show(run_id):
        return shell.run_line_magic("flow", "show $run_id")

    assert show(shell.user_ns["greet_run"].run_id).status == "suspended"


def test_rerun_with_the_edited_workflow_from_a_variable_or_a_file(shell, tmp_path):
    shell.user_ns["params"] = {"who": "Ada"}
    first = shell.run_cell_magic("flow", "--no-widget --run --inputs {params}", CELL)
    shell.user_ns["rid"] = first.run_id
    shell.run_cell_magic("flow", "edited --no-widget", CELL.replace("Hello", "Hi"))
    edited = shell.run_line_magic("flow", "rerun $rid --workflow edited")
    assert edited.node("hello").output == "Hi Ada" and edited.status == "suspended"
    assert edited.run_id != first.run_id
    same = shell.run_line_magic("flow", "rerun $rid")  # its own workflow: nothing changed
    assert same.node("hello").output == "Hello Ada" and same.node("hello").cached_from

    path = tmp_path / "greet.yaml"
    path.write_text(CELL.replace("Hello", "Howdy"), encoding="utf-8")
    shell.user_ns["path"] = path
    from_file = shell.run_line_magic("flow", "rerun $rid hello --workflow $path -i who=Bo")
    assert from_file.node("hello").output == "Howdy Bo"
    assert from_file.outputs is None and from_file.status == "suspended"


def test_help_is_printed_and_the_kernel_keeps_running(shell, capsys):
    assert shell.run_line_magic("flow", "--help") is None
    out = capsys.readouterr().out
    assert out.startswith("usage: %flow [-h] [--store FILE] COMMAND") and "rerun" in out
    assert "{expression}" in out  # the rules for values
    assert shell.run_line_magic("flow", "run --help") is None
    assert "--inputs JSON|{var}" in capsys.readouterr().out
    assert shell.run_cell_magic("flow", "--help", CELL) is None
    assert capsys.readouterr().out.startswith("usage: %%flow [-h] [--run]")
    assert "greet" not in shell.user_ns  # help only: the cell defined nothing
    assert "{expression}" in shell.magics_manager.registry["FlowMagics"].flow_line.__doc__


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


def test_fork_diff_and_replay_as_line_magics(shell):
    run = shell.run_cell_magic("flow", "greet --run --no-widget --inputs '{\"who\": \"Ada\"}'",
                               CELL)
    shell.user_ns["answer"] = {"approved": False}
    fork = shell.run_line_magic("flow", f"fork {run.run_id} --at ok --output-json {{answer}}")
    assert fork.status == "succeeded" and fork.outputs == {"text": "Hello Ada", "approved": False}
    changed = shell.run_line_magic("flow", f"diff {run.run_id} {fork.run_id} --changed")
    assert list(changed["path"]) == ["ok"] and list(changed["change"]) == ["edited"]
    assert shell.run_line_magic("flow", f"replay {fork.run_id}").identical
