"""A ``subflow`` may name a workflow stored by an earlier run: the newest stored version runs."""

from __future__ import annotations

import pytest

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)


def _child(greeting: str) -> dict:
    return {"id": "greeter", "inputs": {"type": "object", "properties": {"who": {}}},
            "nodes": {"hi": {"type": "template",
                             "config": {"template": greeting + " {{ inputs.who }}"}}}}


PARENT = {"id": "parent", "nodes": {
    "sub": {"type": "subflow", "config": {"workflow": "greeter", "inputs": {"who": "Ada"}}},
    "show": {"type": "template", "config": {"template": "child said {{ nodes.sub.output.hi }}"}}},
    "edges": ["sub -> show"]}


def test_a_subflow_runs_the_newest_stored_version_of_a_workflow_id(store):
    fm_lab.run(_child("Hello"), {"who": "x"}, store=store)  # stores greeter v1
    fm_lab.run(_child("Hi"), {"who": "x"}, store=store)  # and v2
    run = fm_lab.run(PARENT, store=store)
    assert run.status == "succeeded", run.error
    assert run.outputs == {"show": "child said Hi Ada"}
    [child_id] = [r for r in store.runs()["run_id"] if r.startswith(run.run_id + ".")]
    child = fm_lab.get_run(child_id, store=store)
    assert child.outputs == {"hi": "Hi Ada"}
    versions = store.runs().set_index("run_id")["workflow_version"]
    assert versions[child_id] == 2


def test_a_subflow_naming_an_unknown_workflow_fails_clearly(store):
    run = fm_lab.run(PARENT, store=store)
    assert run.status == "failed"
    assert run.error["node"] == "sub"
    assert "no workflow file or stored workflow named 'greeter'" in run.error["message"]
    with pytest.raises(fm_lab.RunFailedError):
        run.raise_for_status()


def test_a_stored_workflow_another_user_saved_runs_restricted(store, monkeypatch):
    """bob's stored workflow names a function no allow-list has: in bob's own runs it is his
    code and runs under his trust; alice's run of it, even a trusted one, is restricted."""
    helper = {"id": "dedent", "nodes": {"d": {"type": "code", "config": {
        "function": "textwrap:dedent", "args": {"text": "  hi"}}}}}
    parent = {"id": "uses_dedent", "nodes": {"sub": {"type": "subflow", "config": {
        "workflow": "dedent"}}}}
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.setenv("FM_LAB_USER", "bob")
    assert fm_lab.run(helper, store=store, policy="trusted").status == "succeeded"
    assert fm_lab.run(parent, store=store, policy="trusted").status == "succeeded"

    monkeypatch.setenv("FM_LAB_USER", "alice")
    run = fm_lab.run(parent, store=store, policy="trusted")
    assert run.status == "failed"
    assert "function 'textwrap:dedent' is not allowed by the restricted policy" in (
        run.error["message"])
    saved = store.workflows("dedent")
    assert list(saved["saved_by"]) == ["bob"]
