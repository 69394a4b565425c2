"""The notebooks in ``notebooks/`` run top to bottom on the offline model; their asserts hold
and each cell shows what a reader is told they will see (checked cell by cell: a cell is found
by a piece of its source, so reordering the notebook does not shift the checks)."""

from __future__ import annotations

import re
from pathlib import Path

WIDGET = "application/vnd.jupyter.widget-view+json"


def cell(nb, snippet: str, *, exact: bool = False):
    """The one code cell whose source contains ``snippet`` (is ``snippet``, if ``exact``)."""
    [found] = [c for c in nb.cells if c.cell_type == "code"
               and (c.source.strip() == snippet if exact else snippet in c.source)]
    return found


def text(code_cell) -> str:
    """What a reader sees of the cell as text: its streams and plain-text results."""
    return "".join(out.get("text", "") + out.get("data", {}).get("text/plain", "")
                   for out in code_cell.get("outputs", []))


def kinds(code_cell) -> list[str]:
    """Per output: the richest thing it shows (widget, png, html, text)."""
    shown = []
    for out in code_cell.get("outputs", []):
        data = out.get("data", {})
        shown.append(next((k for k in (WIDGET, "image/png", "text/html") if k in data),
                          out.get("name") or "text/plain"))
    return shown


def rows(code_cell) -> list[list[str]]:
    """The plain-text lines of a cell's output split into words (DataFrame rows, run
    tables)."""
    return [line.split() for line in text(code_cell).splitlines()]


def test_quickstart(execute):
    nb = execute("quickstart.ipynb")
    assert text(cell(nb, "store = fm_lab.connect()")).endswith("/home/fm_lab.duckdb')")
    assert kinds(cell(nb, "%%flow triage")) == [WIDGET]  # the graph editor

    invalid = cell(nb, "broken = {")
    assert kinds(invalid) == ["text/html"]
    shown = text(invalid)
    assert shown.startswith("workflow 'broken' is invalid (3 problems):")
    for problem in ("nodes.a.type: unknown node type 'no_such_type'", "nodes.b.config.template",
                    "'c'"):
        assert problem in shown, problem

    first = cell(nb, "run = fm_lab.run(triage")
    lines = rows(first)
    assert lines[0][0] == "Run" and lines[0][2:] == ["of", "triage:", "succeeded"]
    assert [line[:2] for line in lines[1:]] == [
        ["mood", "succeeded"], ["stats", "succeeded"], ["route", "succeeded"],
        ["sorry", "succeeded"], ["thanks", "skipped"]]
    assert "'Sorry about broken, slow (9 words read).'" in text(first)

    assert text(cell(nb, 'run.node("mood").output')) == (
        "{'score': -1.0,\n 'label': 'negative',\n 'positive': [],\n 'negative': ['broken', "
        "'slow']}")
    cached = {line[0]: line[1:] for line in rows(cell(nb, "again = run.rerun"))[2:]}
    assert cached["sorry"] == ["succeeded", "NaN"]  # recomputed; the rest reused
    assert all(cached[n][1].startswith('{"run_id"') for n in ("mood", "stats", "route"))
    assert text(cell(nb, "third = again.rerun")) == (
        "{'sorry': 'We are on it: broken and slow.'}")
    spans = [line[1:4] for line in rows(cell(nb, "fm_lab.trace(run.run_id)"))[1:]]
    assert spans == [["0", "workflow", "triage"], ["1", "node", "mood"], ["1", "node", "stats"],
                     ["1", "node", "route"], ["1", "node", "sorry"]]
    assert kinds(cell(nb, "fm_lab.plot_trace(run.run_id)")) == ["image/png"]
    listed = text(cell(nb, "%flow runs --limit 5"))
    assert len(re.findall(r"\btriage\b", listed)) == 3  # the run and its two re-runs


def test_human_in_the_loop(execute):
    nb = execute("human_in_the_loop.ipynb")
    assert kinds(cell(nb, "%%flow expense")) == [WIDGET]
    suspended = rows(cell(nb, 'run = fm_lab.run(expense, {"employee": "Ada"'))
    assert suspended[0][2:] == ["of", "expense:", "suspended"]
    assert [line[:2] for line in suspended[1:]] == [
        ["check", "succeeded"], ["route", "succeeded"], ["manager", "suspended"],
        ["book", "pending"]]
    waiting = text(cell(nb, "fm_lab.pending(run.run_id)"))
    assert "manager  manager" in waiting and "Approve Ada's expense of 420 EUR?" in waiting
    refused = text(cell(nb, '{"approved": "maybe", "by": 7}'))
    assert refused.startswith("resume data for manager of run ")
    assert "is invalid; the run is unchanged:" in refused
    assert "data.approved: 'maybe' is not of type 'boolean'" in refused
    assert "data.by: 7 is not valid" in refused
    assert text(cell(nb, "done = fm_lab.resume(")) == (
        "{'booked': 'booked 420 for Ada',\n"
        " 'decision': {'approved': True, 'comment': 'ok, conference trip', 'by': 'lee'}}")
    assert text(cell(nb, '{"employee": "Bob", "amount": 12}')) == (
        "{'booked': 'booked 12 for Bob', 'decision': None}")
    # Run All ends on a question for the reader, answered on the one canvas of the notebook
    left = text(cell(nb, "waiting = fm_lab.run(expense"))
    assert "manager  manager" in left and "Approve Cy's expense of 250 EUR?" in left
    editors = [c for c in nb.cells if c.cell_type == "code" and WIDGET in kinds(c)]
    assert len(editors) == 1
    assert "fm_lab.resume" not in "".join(  # nothing after the question answers it
        c.source for c in nb.cells[nb.cells.index(cell(nb, "waiting = fm_lab.run")):]
        if c.cell_type == "code")


def test_traces_and_costs(execute):
    nb = execute("traces_and_costs.ipynb")
    assert text(cell(nb, "model = script(")) == "'offline/support'"
    assert text(cell(nb, 'run.outputs["replies"]["results"]')) == (
        "['We are sorry. A refund is on its way.',\n 'We are looking into the speed.',\n"
        " 'Thank you for your feedback!']")
    by_model = rows(cell(nb, 'fm_lab.usage(by=["model"], run_id=run.run_id)', exact=True))
    assert by_model[1][:3] == ["0", "offline/support", "3"]  # three calls
    by_node = sorted(line[1:3] for line in rows(cell(nb, 'usage(by=["node"]'))[1:])
    assert by_node == [["replies[0]", "1"], ["replies[1]", "1"], ["replies[2]", "1"]]
    priced = {line[0]: line for line in rows(cell(nb, "costs = pd.concat"))[1:]}
    assert set(priced) == {"gpt-4o-mini", "gpt-4o"}
    assert float(priced["gpt-4o"][-1]) > float(priced["gpt-4o-mini"][-1]) > 0
    own = rows(cell(nb, "fm_lab.set_price(model"))
    assert own[1][1] == "offline/support" and float(own[1][2]) > 0
    assert kinds(cell(nb, "fm_lab.plot_usage(")) == ["image/png"]
    slowest = rows(cell(nb, "fm_lab.slowest(5"))[1:]
    assert len(slowest) == 5 and slowest[0][1] == "workflow"  # it holds every other span
    durations = [float(line[-1]) for line in slowest]
    assert durations == sorted(durations, reverse=True)
    per_kind = {line[1]: line[2] for line in rows(cell(nb, "from spans group by kind"))[1:]}
    assert per_kind["llm"] == "3" and per_kind["item"] == "3"
    assert kinds(cell(nb, "fm_lab.plot_trace(run.run_id)")) == ["image/png"]


def test_agents(execute):
    nb = execute("agents.ipynb")
    answer = "Oslo in brief: capital of Norway, about 700,000 people, founded around 1040."
    generated = text(cell(nb, "result = coordinator.generate(")).splitlines()
    assert generated[0] == answer and generated[1].startswith("3 steps; {'input_tokens': ")
    trace = rows(cell(nb, "trace = fm_lab.trace(result.run_id)"))
    spans = [line[2:4] for line in trace[1:] if len(line) > 3 and line[0].isdigit()]
    assert ["agent", "coordinator"] in spans and ["tool", "researcher"] in spans
    assert ["tool", "search_notes"] in spans and ["agent", "writer"] in spans
    usage = {line[1]: line[2] for line in rows(cell(nb, 'fm_lab.usage(by="agent")'))[1:4]}
    assert usage == {"coordinator": "3", "researcher": "2", "writer": "1"}  # calls per agent
    stream = rows(cell(nb, "for chunk in coordinator.stream("))
    assert [line[0] for line in stream[:4]] == [
        "tool-call", "tool-call", "tool-output", "tool-result"]
    assert stream[2][1:] == ["researcher", "{'searching':", "'Oslo',", "'for':", "'ada'}"]
    assert stream[-1][:2] == ["finish", "coordinator"]
    assert " ".join(stream[-1][2:]) == answer
    # an MCP server's tool: the invalid argument went back to the model, then the real call
    assert text(cell(nb, "answer = maths.generate(")).splitlines() == [
        "2 + 3 = 5", "[('add', False), ('add', True)]"]


def test_notebooks_are_committed_without_outputs():
    import nbformat

    notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    for path in notebooks.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path


def test_time_travel(execute):
    nb = execute("time_travel.ipynb")
    assert text(cell(nb, "run = fm_lab.run(workflow")) == (
        "'An essay on why runs crash; what a journal keeps.'")
    forked = text(cell(nb, "fork = run.fork(\"outline\"")).splitlines()
    assert forked[0] == "An essay on what a fork reuses; what it runs again."
    assert forked[1].startswith("1 model call: ['Write from: what a fork reuses")
    assert forked[2] == "forked from True at outline"
    changes = {line[1]: line[2:5] for line in rows(cell(nb, "changes = fm_lab.diff("))[1:]}
    assert changes == {"outline": ["edited", "True", "succeeded"],
                       "draft": ["re-run", "True", "succeeded"],
                       "polish": ["re-run", "True", "succeeded"],
                       "sections": ["reused", "False", "succeeded"],
                       "sections[0]": ["reused", "False", "succeeded"],
                       "sections[1]": ["reused", "False", "succeeded"]}
    assert "+an essay on what a fork reuses" in text(cell(nb, 'loc["draft", "output_diff"]'))
    beside = cell(nb, "fm_lab.widget.compare(fork)")
    assert kinds(beside) == ["text/html"]
    assert text(beside).startswith("fork ") and "3 node(s) changed" in text(beside)
    item = rows(cell(nb, "item_fork = run.fork("))
    assert item[0] == ["0", "model", "calls"]
    assert [line[1:3] for line in item[2:]] == [["sections[1]", "edited"],
                                                 ["sections", "re-run"]]
    assert "identical" in text(cell(nb, "same = fm_lab.replay(")).splitlines()[0]
    assert text(cell(nb, "same = fm_lab.replay(")).startswith("True <Replay of")
    differ = text(cell(nb, "changed = fm_lab.replay(")).splitlines()
    assert differ[0].endswith(": 1 differ: polish>")
    assert differ[1:] == ["@@ -1 +1 @@", "-An essay on why runs crash; what a journal keeps.",
                          "+AN ESSAY ON WHY RUNS CRASH; WHAT A JOURNAL KEEPS!"]


def test_evals(execute):
    nb = execute("evals.ipynb")
    assert text(cell(nb, "small = script(")).startswith("('offline/router-small'")
    assert "Dataset('tickets', version=1, examples=12)" in text(cell(nb, "tickets_ds = ev."))
    first = rows(cell(nb, "exp = ev.run(route"))
    assert first[1][:2] == ["0", "small-terse"]
    assert "Experiment routing" in cell(nb, "exp  # the HTML repr").outputs[0]["data"][
        "text/html"]
    models = {line[0]: line for line in rows(cell(nb, "models = ev.compare("))[2:]}
    assert models["exact_match"][1:3] == ["McNemar", "exact"] and models["exact_match"][-1] \
        == "True"  # small -> large on the terse prompt: 0.5 -> 1.0, p = 1/32
    assert models["cost_usd"][-1] == "False"
    prompts = {line[0]: line for line in rows(cell(nb, "prompts = ev.compare("))[2:6]}
    assert prompts["exact_match"][-1] == "True" and prompts["contains"][-1] == "False"
    assert kinds(cell(nb, "priced = ev.compare(")) == ["image/png"]
    judged = rows(cell(nb, "judge = ev.llm_judge("))
    assert judged[1] == ["0", "small-terse", "billing", "1.0", "clear", "billing", "case"]
    assert judged[2][-3:] == ["0.5", "not", "billing"]
    scored = text(cell(nb, "def one_word(output)"))
    assert "of 12 runs scored" in scored and "one_word" in scored


def test_voice(execute):
    nb = execute("voice.ipynb")
    player = cell(nb, 'clip = speak("Your parcel ships today.")')
    assert kinds(player) == ["text/html"]  # the Audio output as a player
    shown = player.outputs[0]["data"]["text/html"]
    assert "<audio" in shown and "data:audio/x-wav;base64," in shown
    model, fmt, seconds, *_ = text(cell(nb, 'print(clip["model"]')).split()
    assert (model, fmt) == ("offline/voice", "wav") and float(seconds) > 0
    assert text(cell(nb, "clerk = script_transcription(")).startswith(
        "('Your parcel ships today.',\n 'en',\n [{'start': 0.0,")
    assert kinds(cell(nb, 'run.node("say").output', exact=True)) == ["text/html"]
    talked = cell(nb, "turn = desk.talk(question)")
    assert text(talked).splitlines()[0] == "What are your opening hours? -> We open at nine."
    assert kinds(talked) == ["stdout", "text/html"]
    usage = {line[1]: line[2:] for line in rows(cell(nb, 'fm_lab.usage(by=["model"])'))[1:]}
    assert usage["offline/voice"][0] == "3"  # the clip, the run's speak node, the answer
    assert usage["offline/clerk"][0] == "1" and usage["offline/ears"][0] == "1"
    assert float(usage["offline/clerk"][1]) > 0  # audio seconds
    assert usage["offline/desk"][2] == "0"  # a chat model: tokens, no characters
