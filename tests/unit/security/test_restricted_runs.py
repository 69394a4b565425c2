"""Runs under the restricted policy: what a workflow names is checked before anything runs
(every problem at once), again when it is resolved, and the policy is recorded on the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import fm_lab
from fm_lab import cli
from fm_lab.nodes.code import CodeNode
from fm_lab.security.policy import PolicyError
from fm_lab.store.memory_store import MemoryStore


def code(function: str, **args: Any) -> dict[str, Any]:
    return {"type": "code", "config": {"function": function, "args": args}}


def inline_agent(*tools: str) -> dict[str, Any]:
    return {"type": "agent", "config": {"instructions": "Use your tools.",
                                        "model": "offline/echo", "tools": list(tools),
                                        "prompt": "hi"}}


def refused(flow: dict[str, Any], **kwargs: Any) -> list[str]:
    """The issues a restricted run of ``flow`` is refused with (it must be refused)."""
    with pytest.raises(fm_lab.WorkflowValidationError) as info:
        fm_lab.run(flow, store=MemoryStore(), policy="restricted", **kwargs)
    return [str(issue) for issue in info.value.issues]


def test_os_system_and_an_inline_tool_are_refused_before_anything_runs(tmp_path, canary):
    shell_made = tmp_path / "shell_made"
    flow = {"id": "pwn", "nodes": {
        "pwn": code("os:system", command=f"touch {shell_made}"),
        "helper": inline_agent(canary.touch, "textwrap:dedent"),
        "fine": code(canary.touch)}, "edges": ["pwn -> helper"]}
    issues = refused(flow)
    assert issues == [
        "nodes.pwn.config.function: function 'os:system' is not allowed by the restricted "
        "policy: register it with @fm_lab.register_function, publish it as an "
        "fm_lab.functions entry point, or allow module 'os' in FM_LAB_ALLOW "
        "or the store's policy.allow setting",
        f"nodes.helper.config.tools[0]: tool '{canary.touch}' is not allowed by the restricted "
        "policy: register it with @fm_lab.register_function, publish it as an "
        f"fm_lab.functions entry point, or allow module '{canary.module}' in FM_LAB_ALLOW "
        "or the store's policy.allow setting",
        "nodes.helper.config.tools[1]: tool 'textwrap:dedent' is not allowed by the restricted "
        "policy: register it with @fm_lab.register_function, publish it as an "
        "fm_lab.functions entry point, or allow module 'textwrap' in FM_LAB_ALLOW "
        "or the store's policy.allow setting",
        f"nodes.fine.config.function: function '{canary.touch}' is not allowed by the "
        "restricted policy: register it with @fm_lab.register_function, publish it as an "
        f"fm_lab.functions entry point, or allow module '{canary.module}' in FM_LAB_ALLOW "
        "or the store's policy.allow setting",
    ]
    assert not shell_made.exists() and canary.untouched()


def test_trusted_runs_the_same_import_path(canary):
    run = fm_lab.run({"id": "ok", "nodes": {"fine": code(canary.touch)}}, store=MemoryStore())
    assert run.status == "succeeded" and run.outputs == {"fine": "touched"}
    assert run.policy == "trusted"


def test_an_allow_listed_module_runs_under_restricted(monkeypatch, canary):
    monkeypatch.setenv("FM_LAB_ALLOW", "canary_*,fm_lab.demo_functions")
    flow = {"id": "ok", "nodes": {"fine": code(canary.touch),
                                  "stats": code("fm_lab.demo_functions:text_stats",
                                                text="a b")}}
    run = fm_lab.run(flow, store=MemoryStore(), policy="restricted")
    assert run.status == "succeeded", run.error
    assert run.outputs["fine"] == "touched" and run.outputs["stats"]["words"] == 2
    assert canary.called.exists() and run.policy == "restricted"


def test_a_registered_function_runs_under_restricted(register, tmp_path):
    made = tmp_path / "made"

    def make() -> str:
        made.write_text("x")
        return "made"

    name = register(make)
    run = fm_lab.run({"id": "ok", "nodes": {"m": code(name)}}, store=MemoryStore(),
                     policy="restricted")
    assert run.status == "succeeded" and made.exists()


def test_nested_bodies_and_templated_names_are_checked_too(canary):
    flow = {"id": "nested", "nodes": {
        "each": {"type": "foreach", "config": {"items": [1], "node": code("os:getcwd")}},
        "both": {"type": "parallel", "config": {"branches": {"a": {"workflow": {
            "id": "inner", "nodes": {"x": code(canary.touch)}}}}}},
        "sub": {"type": "subflow", "config": {"workflow": {
            "id": "child", "nodes": {"y": inline_agent("os:remove")}}}},
        "dyn": code("{{ inputs.fn }}")}}
    locations = [issue.split(": ", 1)[0] for issue in refused(flow)]
    assert locations == ["nodes.each.config.node.config.function",
                         "nodes.both.config.branches.a.workflow.nodes.x.config.function",
                         "nodes.sub.config.workflow.nodes.y.config.tools[0]",
                         "nodes.dyn.config.function"]
    assert canary.untouched()


def test_registered_agents_are_allowed_and_agents_by_import_path_checked():
    issues = refused({"id": "a", "nodes": {
        "shipped": {"type": "agent", "config": {"agent": "fm_lab.demo_agents:support",
                                                "prompt": "hi"}},  # an entry point: allowed
        "by_path": {"type": "agent", "config": {"agent": "fm_lab.demo_agents:_model",
                                                "prompt": "hi"}},
        "subs": {"type": "agent", "config": {"instructions": "x", "agents": ["os:getcwd"],
                                             "prompt": "hi"}}}})
    assert [i.split(": ", 1)[0] for i in issues] == ["nodes.by_path.config.agent",
                                                    "nodes.subs.config.agents[0]"]
    assert "agent 'fm_lab.demo_agents:_model' is not allowed" in issues[0]


def test_resolution_refuses_at_run_time_what_bypassed_validation(monkeypatch, tmp_path):
    """Defence in depth: a reference validation did not see still refuses when resolved."""
    made = tmp_path / "made"
    monkeypatch.setattr(CodeNode, "references", classmethod(lambda cls, config: []))
    run = fm_lab.run({"id": "p", "nodes": {"pwn": code("os:system", command=f"touch {made}")}},
                     store=MemoryStore(), policy="restricted")
    assert run.status == "failed" and not made.exists()
    assert run.error is not None
    assert run.error["type"] == PolicyError.__name__
    assert "'os:system' is not allowed by the restricted policy" in run.error["message"]


def test_a_plan_validated_as_trusted_is_not_reused_under_restricted():
    flow = {"id": "cached", "nodes": {"cwd": code("os:getcwd")}}
    store = MemoryStore()
    assert fm_lab.run(flow, store=store).status == "succeeded"
    refused(flow)
    assert fm_lab.run(flow, store=store).status == "succeeded"


def test_fm_lab_policy_sets_the_policy_and_validate_takes_one(monkeypatch):
    flow = {"id": "env", "nodes": {"cwd": code("os:getcwd")}}
    assert fm_lab.validate(flow) is not None
    with pytest.raises(fm_lab.WorkflowValidationError, match="restricted policy"):
        fm_lab.validate(flow, policy="restricted")
    monkeypatch.setenv("FM_LAB_POLICY", "restricted")
    with pytest.raises(fm_lab.WorkflowValidationError, match="restricted policy"):
        fm_lab.run(flow, store=MemoryStore())
    with pytest.raises(fm_lab.WorkflowValidationError, match="restricted policy"):
        fm_lab.validate(flow)
    assert fm_lab.run(flow, store=MemoryStore(), policy="trusted").status == "succeeded"


def test_a_child_run_inherits_its_parents_policy(tmp_path, monkeypatch):
    child = tmp_path / "child.flow.yaml"
    child.write_text("id: child\nnodes:\n  cwd: {type: code, config: {function: 'os:getcwd'}}\n")
    monkeypatch.setenv("FM_LAB_ALLOW", "fm_lab.demo_functions")
    run = fm_lab.run({"id": "parent", "nodes": {"sub": {"type": "subflow", "config": {
        "workflow": str(child)}}}}, store=MemoryStore(), policy="restricted")
    assert run.status == "failed"
    assert run.error is not None and "'os:getcwd' is not allowed" in run.error["message"]


@pytest.mark.parametrize("store", [MemoryStore, lambda: fm_lab.Store(":memory:")])
def test_the_policy_is_recorded_on_the_run(store, register):
    target = store()
    name = register(lambda: 1)
    flow = {"id": "rec", "nodes": {"one": code(name)}}
    restricted = fm_lab.run(flow, store=target, policy="restricted")
    trusted = fm_lab.run(flow, store=target)
    assert fm_lab.get_run(restricted.run_id, store=target).policy == "restricted"
    assert fm_lab.get_run(trusted.run_id, store=target).policy == "trusted"
    frame = fm_lab.runs(store=target).set_index("run_id")
    assert frame.loc[restricted.run_id, "policy"] == "restricted"
    assert frame.loc[trusted.run_id, "policy"] == "trusted"


def test_a_restricted_run_resumes_restricted():
    store = MemoryStore()
    flow = {"id": "wait", "nodes": {"ok": {"type": "approval", "config": {"message": "ok?"}},
                                    "after": {"type": "template", "config": {"template": "x"}}},
            "edges": ["ok -> after"]}
    run = fm_lab.run(flow, store=store, policy="restricted")
    assert run.status == "suspended"
    resumed = fm_lab.resume(run.run_id, {"approved": True}, node="ok", store=store)
    assert resumed.status == "succeeded" and resumed.policy == "restricted"


def workflow_file(tmp_path: Path, made: Path) -> Path:
    path = tmp_path / "pwn.flow.yaml"
    path.write_text("id: pwn\nnodes:\n  pwn:\n    type: code\n    config:\n"
                    f"      function: 'os:system'\n      args: {{command: 'touch {made}'}}\n")
    return path


def test_the_cli_refuses_with_policy_restricted(tmp_path, capsys):
    made = tmp_path / "made"
    path = workflow_file(tmp_path, made)
    store = str(tmp_path / "s.duckdb")
    assert cli.main(["--store", store, "run", str(path), "--policy", "restricted"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fm-lab: error: {path}: workflow 'pwn' is invalid (1 problem): "
                          "nodes.pwn.config.function: function 'os:system' is not allowed by "
                          "the restricted policy")
    assert "\n" not in err and not made.exists()
    assert cli.main(["validate", str(path), "--policy", "restricted"]) == 1
    assert "not allowed by the restricted policy" in capsys.readouterr().err
    assert not made.exists()


def test_the_cli_shows_the_policy_of_a_run(tmp_path, capsys, monkeypatch):
    flow = tmp_path / "ok.flow.yaml"
    flow.write_text("id: ok\nnodes:\n  t: {type: template, config: {template: hi}}\n")
    store = str(tmp_path / "s.duckdb")
    assert cli.main(["--store", store, "run", str(flow), "--policy", "restricted",
                     "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert cli.main(["--store", store, "show", run_id]) == 0
    assert f"run {run_id} of ok: succeeded (policy: restricted)" in capsys.readouterr().out
    monkeypatch.setenv("FM_LAB_POLICY", "bogus")
    assert cli.main(["--store", store, "run", str(flow)]) == 1
    assert capsys.readouterr().err.strip() == (
        "fm-lab: error: FM_LAB_POLICY='bogus' is not a policy: use trusted or restricted")
