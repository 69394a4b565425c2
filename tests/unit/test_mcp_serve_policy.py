"""``fm-lab mcp serve``'s handlers without a transport: a stored workflow another identity
saved runs restricted even when the server runs the rest trusted."""

from __future__ import annotations

import asyncio

import fm_lab
from fm_lab.mcp.serve import WorkflowServer, load_workflows, saved_by_others

UNSAFE = {"id": "unsafe", "nodes": {"cwd": {"type": "code", "config": {"function": "os:getcwd"}}}}


def test_others_stored_workflows_run_restricted_under_a_trusted_server(monkeypatch, tmp_path):
    store = fm_lab.connect(tmp_path / "s.duckdb")
    monkeypatch.setenv("FM_LAB_USER", "kim")
    assert fm_lab.run(UNSAFE, store=store, policy="trusted").status == "succeeded"
    monkeypatch.setenv("FM_LAB_USER", "ada")
    workflows = load_workflows(store=store)
    assert list(workflows) == ["unsafe"]
    assert saved_by_others(store) == {"unsafe"}

    trusting = WorkflowServer(workflows, store=store, policy="trusted",
                              restricted=saved_by_others(store))
    answer, failed = asyncio.run(trusting.call("unsafe", {}))
    assert failed and "os:getcwd" in answer["error"] and "restricted" in answer["error"]

    monkeypatch.setenv("FM_LAB_USER", "kim")  # its author may run it trusted
    mine = WorkflowServer(workflows, store=store, policy="trusted",
                          restricted=saved_by_others(store))
    answer, failed = asyncio.run(mine.call("unsafe", {}))
    assert not failed and answer["status"] == "succeeded"
    tools = {t["name"]: t for t in mine.tools()}
    assert set(tools) == {"unsafe", "resume"}
    assert tools["unsafe"]["input_schema"] == {"type": "object", "properties": {}}
