"""``fm_lab.workflows``: save, list, load and history over the versions a store keeps (memory,
DuckDB and PostgreSQL stores), still callable as before; ``subflow`` nodes and ``fm-lab run``
name a stored workflow by id and version (``greeter@1``)."""

from __future__ import annotations

import json

import pytest

import fm_lab
from fm_lab.cli import main as cli_main


def _greeter(greeting: str) -> fm_lab.Workflow:
    return fm_lab.Workflow.from_dict({
        "id": "greeter", "name": f"{greeting} greeter",
        "inputs": {"type": "object", "properties": {"who": {"default": "you"}}},
        "nodes": {"hi": {"type": "template",
                         "config": {"template": greeting + " {{ inputs.who }}"}}}})


def test_save_list_load_history(each_store):
    store = each_store
    assert fm_lab.workflows.save(_greeter("Hello"), store=store) == 1
    assert fm_lab.workflows.save(_greeter("Hello"), store=store) == 1  # same content
    assert fm_lab.workflows.save(_greeter("Hi"), store=store) == 2
    assert fm_lab.workflows.save({"id": "other", "nodes": {"x": {"type": "log",
                                  "config": {"message": "x"}}}}, store=store) == 1

    listed = fm_lab.workflows.list(store=store).set_index("workflow_id")
    assert sorted(listed.index) == ["greeter", "other"]
    assert listed.loc["greeter", "latest_version"] == 2
    assert listed.loc["greeter", "versions"] == 2
    assert listed.loc["greeter", "name"] == "Hi greeter"
    assert listed.loc["greeter", "saved_by"] == fm_lab.current_user()

    assert fm_lab.workflows.load("greeter", store=store) == _greeter("Hi")
    assert fm_lab.workflows.load("greeter", version=1, store=store) == _greeter("Hello")
    assert fm_lab.workflows.load("greeter@1", store=store) == _greeter("Hello")
    with pytest.raises(FileNotFoundError, match=r"no version 7 \(versions: 1, 2\)"):
        fm_lab.workflows.load("greeter", version=7, store=store)
    with pytest.raises(FileNotFoundError, match="no workflow file or stored workflow named"):
        fm_lab.workflows.load("nobody", store=store)

    # a run of saved content records that version; history counts the runs of each
    run = fm_lab.run(fm_lab.workflows.load("greeter@1", store=store), store=store)
    assert run.outputs == {"hi": "Hello you"}
    history = fm_lab.workflows.history("greeter", store=store)
    assert history["version"].tolist() == [2, 1]
    assert history["runs"].tolist() == [0, 1]
    with pytest.raises(FileNotFoundError, match="no stored workflow named 'nobody'"):
        fm_lab.workflows.history("nobody", store=store)

    # still callable as before
    versions = fm_lab.workflows("greeter", store=store)
    assert versions["version"].tolist() == [2, 1]


def test_an_invalid_workflow_is_refused_and_nothing_is_saved(each_store):
    bad = {"id": "broken", "nodes": {"x": {"type": "no_such_type"}}}
    with pytest.raises(fm_lab.WorkflowValidationError, match="unknown node type"):
        fm_lab.workflows.save(bad, store=each_store)
    assert fm_lab.workflows.list(store=each_store).empty


PARENT = {"id": "parent", "nodes": {
    "old": {"type": "subflow", "config": {"workflow": "greeter@1", "inputs": {"who": "Ada"}}},
    "new": {"type": "subflow", "config": {"workflow": "greeter", "inputs": {"who": "Ada"}}}}}


def test_a_subflow_names_a_stored_version(each_store):
    fm_lab.workflows.save(_greeter("Hello"), store=each_store)
    fm_lab.workflows.save(_greeter("Hi"), store=each_store)

    run = fm_lab.run(PARENT, store=each_store)

    assert run.status == "succeeded", run.error
    assert run.outputs == {"old": {"hi": "Hello Ada"}, "new": {"hi": "Hi Ada"}}
    missing = fm_lab.run({"id": "p2", "nodes": {"s": {"type": "subflow", "config": {
        "workflow": "greeter@9"}}}}, store=each_store)
    assert missing.status == "failed"
    assert "no version 9" in missing.error["message"]


def test_cli_runs_a_stored_workflow_by_id_and_version(store_path, capsys):
    store = fm_lab.Store(store_path)
    fm_lab.workflows.save(_greeter("Hello"), store=store)
    fm_lab.workflows.save(_greeter("Hi"), store=store)
    store.close()

    assert cli_main(["--store", str(store_path), "run", "greeter@1", "-i", "who=Ada",
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"] == {"hi": "Hello Ada"}
    assert cli_main(["--store", str(store_path), "run", "greeter", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"] == {"hi": "Hi you"}
    assert cli_main(["--store", str(store_path), "run", "greeter@5"]) == 1
    assert "neither a workflow file nor a stored workflow" in capsys.readouterr().err
