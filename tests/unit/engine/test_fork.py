"""Time travel: forks reuse what an edit cannot reach, run the rest, and link to their parent;
on every store."""

from __future__ import annotations

from typing import Any

import pytest

import fm_lab
from fm_lab.engine.fork import ForkError
from fm_lab.llm.offline import script


@pytest.fixture
def chain(register: Any) -> tuple[dict[str, Any], list[str], list[str]]:
    """``a`` (code) -> ``draft`` (llm) -> ``edit`` (code) -> ``publish`` (code), with the
    code nodes and the model calls counted."""
    calls: list[str] = []
    asked: list[str] = []

    def step(name: str, value: Any) -> str:
        calls.append(name)
        return f"{value}>{name}"

    def reply(messages: list[dict[str, Any]], tools: Any) -> str:
        asked.append(str(messages[-1]["content"]))
        return "a draft"

    fn = register(step)
    model = script(f"fork_{fn}", fn=reply)
    wf = {"id": "fork_chain", "nodes": {
        "a": {"type": "code", "config": {"function": fn, "args": {
            "name": "a", "value": "{{ inputs.n }}"}}},
        "draft": {"type": "llm", "config": {"model": model,
                                            "prompt": "write about {{ nodes.a.output }}"}},
        "edit": {"type": "code", "config": {"function": fn, "args": {
            "name": "edit", "value": "{{ nodes.draft.output }}"}}},
        "publish": {"type": "code", "config": {"function": fn, "args": {
            "name": "publish", "value": "{{ nodes.edit.output }}"}}}},
        "edges": ["a -> draft", "draft -> edit", "edit -> publish"]}
    return wf, calls, asked


def test_a_fork_with_an_edited_output_reruns_only_downstream(
        each_store: Any, chain: tuple[dict[str, Any], list[str], list[str]]) -> None:
    wf, calls, asked = chain
    parent = fm_lab.run(wf, {"n": 1}, store=each_store)
    assert parent.status == "succeeded" and len(asked) == 1
    calls.clear()
    asked.clear()
    forked = parent.fork("draft", output="a better draft")
    assert forked.status == "succeeded", forked.error
    assert (calls, asked) == (["edit", "publish"], [])  # a reused, the model never asked
    assert forked.outputs == {"publish": "a better draft>edit>publish"}
    again = fm_lab.get_run(forked.run_id, store=each_store)
    assert (again.forked_from, again.forked_at_node) == (parent.run_id, "draft")
    assert again.node("a").cached_from == {"run_id": parent.run_id, "path": "a"}
    assert again.node("draft").output == "a better draft"
    assert fm_lab.get_run(parent.run_id, store=each_store).outputs == parent.outputs

    calls.clear()
    grandchild = forked.fork("edit", inputs={"n": 2})  # a fork of a fork: edit re-runs
    assert calls == ["edit", "publish"] and asked == []
    assert grandchild.outputs == forked.outputs and grandchild.forked_from == forked.run_id

    calls.clear()
    edited = {**wf, "nodes": {**wf["nodes"], "publish": {
        "type": "template", "config": {"template": "{{ nodes.edit.output }}!"}}}}
    redone = forked.fork("draft", output="short", workflow=edited)
    assert calls == ["edit"] and redone.outputs == {"publish": "short>edit!"}


def test_fork_errors_name_the_problem_and_store_nothing(
        each_store: Any, chain: tuple[dict[str, Any], list[str], list[str]]) -> None:
    wf, _, _ = chain
    parent = fm_lab.run(wf, {"n": 1}, store=each_store)
    before = len(fm_lab.runs(store=each_store))
    with pytest.raises(ForkError, match="has no node 'nope'; nodes: a, draft, edit, publish"):
        parent.fork("nope", output=1)
    with pytest.raises(ForkError, match="has no path 'a\\[3\\]'; paths: "):
        parent.fork("a[3]", output=1)
    with pytest.raises(ForkError, match="one node's output"):
        parent.fork("a", outputs={"a": 1, "draft": 2})
    assert len(fm_lab.runs(store=each_store)) == before


def test_an_output_failing_the_schema_is_refused(each_store: Any) -> None:
    wf = {"id": "fork_schema", "nodes": {"ask": {"type": "llm", "config": {
        "model": script("fork_schema", default='{"score": 3}'), "prompt": "score it",
        "output_schema": {"type": "object", "required": ["score"],
                          "properties": {"score": {"type": "integer"}}}}}}}
    parent = fm_lab.run(wf, store=each_store)
    with pytest.raises(ForkError, match=r"does not match its output_schema .*score"):
        parent.fork("ask", output={"score": "high"})
    assert len(fm_lab.runs(store=each_store)) == 1
    assert parent.fork("ask", output={"score": 5}).outputs == {"ask": {"score": 5}}


def test_a_fork_inside_a_foreach_item(each_store: Any, register: Any) -> None:
    calls: list[str] = []

    def shout(text: str) -> str:
        calls.append(text)
        return text.upper()

    fn = register(shout)
    body = {"id": "item", "nodes": {
        "say": {"type": "template", "config": {"template": "{{ inputs.item }}!"}},
        "loud": {"type": "code", "config": {"function": fn,
                                            "args": {"text": "{{ nodes.say.output }}"}}}},
        "edges": ["say -> loud"]}
    wf = {"id": "fork_loop", "nodes": {
        "loop": {"type": "foreach", "config": {"items": "{{ inputs.words }}",
                                               "workflow": body}},
        "count": {"type": "template", "config": {
            "template": "{{ nodes.loop.output.results | join(',') }}"}}},
        "edges": ["loop -> count"]}
    parent = fm_lab.run(wf, {"words": ["a", "b", "c"]}, store=each_store)
    assert parent.outputs == {"count": "{'loud': 'A!'},{'loud': 'B!'},{'loud': 'C!'}"}
    calls.clear()
    forked = parent.fork("loop[1]/say", output="bee")
    assert forked.status == "succeeded", forked.error
    assert calls == ["bee"]  # only item 1's downstream node ran
    assert forked.outputs == {"count": "{'loud': 'A!'},{'loud': 'BEE'},{'loud': 'C!'}"}
    calls.clear()
    item = parent.fork("loop[2]", output={"loud": "SEA"})  # a whole item
    assert calls == [] and item.outputs["count"].endswith("{'loud': 'SEA'}")
    with pytest.raises(ForkError, match="sub-workflow at 'loop\\[1\\]' has no node 'x'"):
        parent.fork("loop[1]/x", output=1)


def test_a_fork_inside_a_subflow_child_run(each_store: Any) -> None:
    child = {"id": "fork_child", "nodes": {
        "greet": {"type": "template", "config": {"template": "hi {{ inputs.who }}"}},
        "loud": {"type": "template", "config": {"template": "{{ nodes.greet.output }}!"}}},
        "edges": ["greet -> loud"]}
    wf = {"id": "fork_parent", "nodes": {
        "who": {"type": "template", "config": {"template": "Ada"}},
        "sub": {"type": "subflow", "config": {"workflow": child,
                                              "inputs": {"who": "{{ nodes.who.output }}"}}},
        "end": {"type": "template", "config": {"template": "{{ nodes.sub.output.loud }}"}}},
        "edges": ["who -> sub", "sub -> end"]}
    parent = fm_lab.run(wf, store=each_store)
    assert parent.outputs == {"end": "hi Ada!"}
    forked = parent.fork("sub/greet", output="hello")
    assert (forked.status, forked.outputs) == ("succeeded", {"end": "hello!"})
    assert forked.node("who").cached_from == {"run_id": parent.run_id, "path": "who"}
    inner = fm_lab.get_run(each_store.child_runs(forked.run_id)[0], store=each_store)
    assert (inner.forked_from, inner.forked_at_node) == (
        each_store.child_runs(parent.run_id)[0], "greet")
    with pytest.raises(ForkError, match="has no node 'nope'"):
        parent.fork("sub/nope", output=1)


def test_a_fork_of_a_suspended_run_with_state(each_store: Any) -> None:
    wf = {"id": "fork_wait", "state": {"type": "object", "properties": {
        "tone": {"type": "string"}}},
        "nodes": {
        "draft": {"type": "template", "config": {"template": "text"}},
        "ok": {"type": "approval", "config": {"message": "ship it?", "label": "ok"}},
        "done": {"type": "template", "config": {
            "template": "{{ nodes.ok.output.approved }} {{ state.tone }}"}}},
        "edges": ["draft -> ok", "ok -> done"]}
    parent = fm_lab.run(wf, store=each_store)
    assert parent.status == "suspended"
    forked = parent.fork("ok", output={"approved": True}, state={"tone": "calm"})
    assert (forked.status, forked.outputs) == ("succeeded", {"done": "True calm"})
    assert fm_lab.get_run(parent.run_id, store=each_store).status == "suspended"
    with pytest.raises(ForkError, match="state"):
        parent.fork("ok", output={"approved": True}, state={"tone": 3})


def test_diff_of_a_fork_shows_exactly_the_changed_nodes(
        each_store: Any, chain: tuple[dict[str, Any], list[str], list[str]]) -> None:
    wf, _, _ = chain
    parent = fm_lab.run(wf, {"n": 1}, store=each_store)
    forked = parent.fork("draft", output="a better draft")
    frame = fm_lab.diff(parent, forked)
    assert list(frame["path"]) == ["a", "draft", "edit", "publish"]
    assert list(frame["change"]) == ["reused", "edited", "re-run", "re-run"]
    assert list(frame.loc[frame["changed"], "path"]) == ["draft", "edit", "publish"]
    row = frame.set_index("path").loc["draft"]
    assert row["output_diff"] == "@@ -1 +1 @@\n-a draft\n+a better draft"
    assert row["tokens_a"] > 0 and row["tokens_b"] == 0  # the fork asked no model
    same = fm_lab.diff(parent.run_id, parent.run_id, store=each_store, changed_only=True)
    assert same.empty


def test_the_fork_diff_and_replay_commands(tmp_path: Any, capsys: Any) -> None:
    import json

    from fm_lab.cli import main

    flow = tmp_path / "chain.yaml"
    flow.write_text('id: cli_chain\nnodes:\n  a: {type: template, config: {template: '
                    '"{{ inputs.who }}"}}\n  b: {type: template, config: {template: '
                    '"Hello {{ nodes.a.output }}"}}\nedges: ["a -> b"]\n', encoding="utf-8")
    store = ["--store", str(tmp_path / "cli.duckdb")]
    assert main([*store, "run", str(flow), "-i", "who=Ada", "--json"]) == 0
    parent = json.loads(capsys.readouterr().out)["run_id"]
    assert main([*store, "fork", parent, "--at", "a", "--output-json", '"Bo"', "--json"]) == 0
    forked = json.loads(capsys.readouterr().out)
    assert forked["outputs"] == {"b": "Hello Bo"}
    assert main([*store, "diff", parent, forked["run_id"], "--changed", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["path"], r["change"]) for r in rows] == [("a", "edited"), ("b", "re-run")]
    assert main([*store, "diff", parent, forked["run_id"]]) == 0
    assert "-Hello Ada\n+Hello Bo" in capsys.readouterr().out
    assert main([*store, "replay", forked["run_id"]]) == 0
    assert "identical, no provider called" in capsys.readouterr().out
    assert main([*store, "fork", parent, "--at", "zz", "--output-json", "1"]) == 1
    assert "fm-lab: error: workflow 'cli_chain' has no node 'zz'" in capsys.readouterr().err
