"""The agent node type and the agents registry: registered, imported and inline agents."""

import pytest

import fm_lab
from fm_lab import demo_agents
from fm_lab.agents import Agent, ToolContext, get, register, tool
from fm_lab.llm import script


def test_registry_finds_agents_by_name_and_import_path():
    helper = register(Agent("registry_helper", model="offline/echo"), replace=True)
    assert get("registry_helper") is helper
    assert get("fm_lab.demo_agents:support") is demo_agents.support
    assert demo_agents.support.ref == "fm_lab.demo_agents:support"
    with pytest.raises(LookupError, match="no agent named 'nobody'"):
        get("nobody")
    with pytest.raises(LookupError, match="not an Agent"):
        get("fm_lab.demo_agents:account_status")
    with pytest.raises(ValueError, match="already registered"):
        register(Agent("registry_helper"))


def test_inline_agent_node_with_import_path_tools_and_sub_agents():
    store = fm_lab.Store(":memory:")

    def reply(messages, tools):
        names = sorted(t["function"]["name"] for t in tools)
        if messages[-1]["role"] == "tool":
            return f"{names}: {messages[-1]['content']}"
        return {"tool_calls": [{"name": "text_stats", "arguments": {"text": "a b c!"}}]}

    flow = {"id": "inline", "nodes": {"counter": {"type": "agent", "config": {
        "instructions": "Count words.", "model": script("counter", fn=reply),
        "tools": ["fm_lab.demo_functions:text_stats"], "agents": ["fm_lab.demo_agents:policy"],
        "prompt": "Count: {{ inputs.text }}"}}}}
    run = fm_lab.run(flow, {"text": "a b c!"}, store=store)
    assert run.status == "succeeded", run.error
    output = run.outputs["counter"]
    assert output["text"].startswith("['policy', 'text_stats']: {\"words\": 3")
    assert output["steps"] == 2 and output["usage_by_agent"]["counter"]["calls"] == 2


def test_agent_node_config_errors_name_the_problem():
    bad = {"id": "bad", "nodes": {
        "no_prompt": {"type": "agent", "config": {"agent": "x"}},
        "tools_on_registered": {"type": "agent", "config": {
            "agent": "x", "tools": ["m:f"], "prompt": "hi"}}}}
    with pytest.raises(fm_lab.WorkflowValidationError) as info:
        fm_lab.validate(bad)
    text = str(info.value)
    assert "nodes.no_prompt.config.prompt" in text and "belong to an inline agent" in text


def test_a_missing_agent_fails_the_node_clearly():
    run = fm_lab.run({"id": "missing", "nodes": {"ask": {"type": "agent", "config": {
        "agent": "not_registered_anywhere", "prompt": "hi"}}}}, store=fm_lab.Store(":memory:"))
    assert run.status == "failed"
    assert "no agent named 'not_registered_anywhere'" in str(run.error)


def test_demo_agents_use_fm_lab_model_when_set(monkeypatch):
    monkeypatch.setenv("FM_LAB_MODEL", "gpt-4o-mini")
    assert demo_agents._model("demo-x", lambda m, t: "") == "gpt-4o-mini"
    monkeypatch.delenv("FM_LAB_MODEL")
    assert demo_agents._model("demo-x", lambda m, t: "") == "offline/demo-x"


@tool
def note_in_state(value: str, ctx: ToolContext) -> str:
    """Keep a value in the workflow state."""
    assert ctx.workflow is not None and ctx.agent.name == "noter"
    ctx.workflow.set_state({"noted": value, "seen_run": ctx.workflow.run_id})
    return f"noted; user {ctx.request_context['user']}"


def test_tools_see_the_workflow_and_the_run_request_context():
    register(Agent("noter", model=script("noter", fn=lambda messages, tools: (
        messages[-1]["content"] if messages[-1]["role"] == "tool" else
        {"tool_calls": [{"name": "note_in_state", "arguments": {"value": "blue"}}]})),
        tools=[note_in_state]), replace=True)
    run = fm_lab.run({"id": "note", "nodes": {"n": {"type": "agent", "config": {
        "agent": "noter", "prompt": "note blue"}}}}, store=fm_lab.Store(":memory:"),
        request_context={"user": "kim"})
    assert run.outputs["n"]["text"] == "noted; user kim"
    assert run.state["noted"] == "blue" and run.state["seen_run"] == run.run_id
