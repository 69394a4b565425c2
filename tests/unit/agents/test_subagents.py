"""Sub-agents as tools: delegation spans nest under the parent, usage rolls up per agent under
the root run, and the request context reaches tools and sub-agents."""

import json

import fm_lab
from fm_lab.agents import Agent, ToolContext, tool
from fm_lab.llm import script

SEEN = []


@tool
def find_facts(topic: str, ctx: ToolContext) -> list:
    """Facts about a topic."""
    SEEN.append((ctx.request_context.get("user"), ctx.agent.name, ctx.workflow is None,
                 ctx.agent.messages[-1]["role"]))
    return [f"{topic} is old", f"{topic} is big"]


def _researcher_model():
    def reply(messages, tools):
        if messages[-1]["role"] == "tool":
            return "Facts: " + "; ".join(json.loads(messages[-1]["content"]))
        return {"tool_calls": [{"name": "find_facts", "arguments": {"topic": "Oslo"}}]}
    return script("researcher", fn=reply)


def _coordinator_model():
    def reply(messages, tools):
        assert {t["function"]["name"] for t in tools} == {"researcher", "writer"}
        done = [m for m in messages if m["role"] == "tool"]
        if not done:
            return {"tool_calls": [{"name": "researcher", "arguments": {"message": "Oslo?"}}]}
        if len(done) == 1:
            return {"tool_calls": [{"name": "writer", "arguments": {
                "message": done[0]["content"]}}]}
        return f"Report: {done[1]['content']}"
    return script("coordinator", fn=reply)


def _team():
    researcher = Agent("researcher", "Find facts.", model=_researcher_model(),
                       tools=[find_facts])
    writer = Agent("writer", "Write it up.", model=script(
        "writer", fn=lambda messages, tools: messages[-1]["content"].upper()))
    return Agent("coordinator", "Delegate.", model=_coordinator_model(),
                 agents={"researcher": researcher, "writer": writer})


def test_sub_agents_are_tools_and_usage_is_split_per_agent():
    SEEN.clear()
    result = _team().generate("Tell me about Oslo", request_context={"user": "ada"})
    assert result.text == "Report: FACTS: OSLO IS OLD; OSLO IS BIG"
    assert [c["name"] for c in result.tool_calls] == ["researcher", "writer"]
    assert SEEN == [("ada", "researcher", True, "assistant")]
    by_agent = result.usage_by_agent
    assert {a: by_agent[a]["calls"] for a in by_agent} == {
        "coordinator": 3, "researcher": 2, "writer": 1}
    assert result.usage["input_tokens"] == sum(v["input_tokens"] for v in by_agent.values())
    assert result.cost_usd == 0.0  # offline models are not priced


def test_delegation_spans_nest_and_roll_up_under_the_root_run(tmp_path):
    store = fm_lab.Store(tmp_path / "team.duckdb")
    team = _team()

    @fm_lab.register_function(name="ask_team")
    async def ask(ctx):
        return (await team.agenerate("Oslo", request_context=ctx.request_context)).text

    run = fm_lab.run({"id": "team", "nodes": {"ask": {"type": "code", "config": {
        "function": "ask_team"}}}}, store=store, request_context={"user": "bo"})
    assert run.status == "succeeded"
    tree = fm_lab.trace(run.run_id, store=store)
    rows = list(zip(tree["depth"], tree["kind"], tree["name"], strict=True))
    assert rows[:4] == [(0, "workflow", "team"), (1, "node", "ask"),
                        (2, "agent", "coordinator"), (3, "llm", "offline/coordinator")]
    assert (3, "tool", "researcher") in rows and (4, "agent", "researcher") in rows
    assert (5, "tool", "find_facts") in rows and (4, "agent", "writer") in rows
    assert set(tree["run_id"]) == {run.run_id}
    usage = fm_lab.usage("agent", store=store).set_index("agent")
    assert usage["calls"].to_dict() == {"coordinator": 3, "researcher": 2, "writer": 1}
    assert SEEN[-1][0] == "bo"
    store.close()


def test_a_tool_and_a_sub_agent_cannot_share_a_name():
    import pytest

    with pytest.raises(ValueError, match="both a tool and a sub-agent"):
        Agent("x", agents={"find_facts": Agent("y")}, tools=[find_facts])


def test_an_agent_as_a_plain_tool_runs_with_the_callers_context():
    SEEN.clear()
    researcher = Agent("researcher", model=_researcher_model(), tools=[find_facts])

    def reply(messages, tools):
        if messages[-1]["role"] == "tool":
            return "Got: " + messages[-1]["content"]
        return {"tool_calls": [{"name": "ask_researcher", "arguments": {"message": "Oslo"}}]}

    boss = Agent("boss", model=script("boss", fn=reply),
                 tools=[researcher.as_tool("ask_researcher")])
    result = boss.generate("go", request_context={"user": "cy"})
    assert result.text == "Got: Facts: Oslo is old; Oslo is big"
    assert SEEN == [("cy", "researcher", True, "assistant")]
