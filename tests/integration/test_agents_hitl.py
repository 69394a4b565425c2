"""Human in the loop inside agents: a tool suspends, the run waits durably, another process
resumes it, and the agent finishes without asking the model again for what was done."""

import importlib
import json

import pytest

import fm_lab
from fm_lab.agents import Agent, ToolContext, tool
from fm_lab.agents.context import SuspendNotDurable
from fm_lab.llm import script

REFUND_AGENT = '''
import json
from fm_lab.agents import Agent, ToolContext, tool
from fm_lab.llm import script

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

CALLS = []

@tool
async def refund(amount: float, ctx: ToolContext) -> dict:
    """Refund an amount once a manager approves."""
    ctx.writer.write({"asking": amount})
    decision = await ctx.suspend(
        {"question": f"Refund {amount} EUR?"}, label="manager",
        schema={"type": "object", "required": ["approved"],
                "properties": {"approved": {"type": "boolean"}, "by": {"type": "string"}}})
    return {"refunded": amount if decision["approved"] else 0, "by": decision.get("by")}

def reply(messages, tools):
    CALLS.append(messages[-1]["role"])
    last = messages[-1]
    if last["role"] == "tool":
        done = json.loads(last["content"])
        return f"Refunded {done['refunded']} EUR (approved by {done['by']})."
    return {"tool_calls": [{"id": "call_r", "name": "refund", "arguments": {"amount": 25}}]}

agent = Agent("refunds", "Handle refunds.", model=script("refunds", fn=reply),
              tools=[refund], durable=True)
'''

RESUME = '''
import json, sys
import fm_lab
store = fm_lab.Store(sys.argv[1])
module = __import__(sys.argv[3])
run = fm_lab.resume(sys.argv[2], {"approved": True, "by": "kim"}, store=store)
print(json.dumps({"status": run.status, "outputs": run.outputs, "calls": module.CALLS}))
'''


@pytest.mark.slow
def test_tool_suspends_and_another_process_resumes_the_agent(spawner, store_path):
    module_name = spawner.write_module("refund_agent", REFUND_AGENT)
    module = importlib.import_module(module_name)
    store = fm_lab.Store(store_path)
    result = module.agent.generate("Please refund my order", store=store)
    assert result.status == "suspended" and result.text is None
    assert module.CALLS == ["user"]

    (waiting,) = fm_lab.pending(result.run_id, store=store).to_dict("records")
    assert waiting["label"] == "manager"
    payload = waiting["payload"]
    assert payload["tool"] == "refund" and payload["agent"] == "refunds"
    assert payload["payload"] == {"question": "Refund 25.0 EUR?"}
    conversation = fm_lab.agents.MessageList.deserialize(payload["messages"])
    assert conversation.to_openai()[-1]["tool_calls"][0]["function"]["name"] == "refund"

    with pytest.raises(fm_lab.ResumeValidationError):  # checked before anything changes
        fm_lab.resume(result.run_id, {"approved": "maybe"}, store=store)
    store.close()

    out = spawner.finish(spawner.start(RESUME, str(store_path), result.run_id, module_name))
    resumed = json.loads(out)
    assert resumed["status"] == "succeeded"
    answer = resumed["outputs"]["agent"]
    assert answer["text"] == "Refunded 25.0 EUR (approved by kim)."
    assert [c["ok"] for c in answer["tool_calls"]] == [True] and answer["steps"] == 2
    assert resumed["calls"] == ["tool"]  # the first answer was replayed from the journal

    store = fm_lab.Store(store_path)
    done = fm_lab.agents.AgentResult.from_run(fm_lab.get_run(result.run_id, store=store))
    assert done.text == answer["text"]
    llm_calls = fm_lab.traces(kind="llm", store=store)
    assert len(llm_calls) == 2 and set(llm_calls["agent"]) == {"refunds"}
    store.close()


@tool
async def ask_human(question: str, ctx: ToolContext) -> str:
    """Ask a person."""
    if ctx.workflow is not None:
        ctx.workflow.set_state({"asked": question})  # before the suspend: kept on resume
    return str(await ctx.suspend({"question": question}))


def _asking_model(name):
    def reply(messages, tools):
        if messages[-1]["role"] == "tool":
            return f"The person said: {messages[-1]['content']}"
        return {"tool_calls": [{"name": "ask_human", "arguments": {"question": "Colour?"}}]}
    return script(name, fn=reply)


def test_an_agent_node_suspends_inside_a_workflow_and_resumes(store):
    fm_lab.agents.register(Agent("asker", model=_asking_model("asker"), tools=[ask_human]),
                           replace=True)
    flow = {"id": "ask", "nodes": {
        "who": {"type": "agent", "config": {"agent": "asker", "prompt": "Ask for a colour"}},
        "after": {"type": "template", "config": {"template": "{{ nodes.who.output.text }}"}}},
        "edges": ["who -> after"]}
    run = fm_lab.run(flow, store=store)
    assert run.status == "suspended"
    run = fm_lab.resume(run.run_id, "blue", store=store)
    assert run.status == "succeeded"
    assert run.outputs == {"after": "The person said: blue"}
    assert run.state == {"asked": "Colour?"}


@tool
def mark(step: str, ctx: ToolContext) -> str:
    """Mark a step in the workflow state."""
    ctx.workflow.set_state({"marked": step})
    MARKS.append(step)
    return "marked"


MARKS = []


def test_state_set_by_a_replayed_tool_survives_the_resume(store):
    def reply(messages, tools):
        done = [m for m in messages if m["role"] == "tool"]
        if not done:
            return {"tool_calls": [{"name": "mark", "arguments": {"step": "before asking"}}]}
        if len(done) == 1:
            return {"tool_calls": [{"name": "ask_human", "arguments": {"question": "Size?"}}]}
        return f"Size {done[-1]['content']}"

    fm_lab.agents.register(Agent("marker", model=script("marker", fn=reply),
                                 tools=[mark, ask_human]), replace=True)
    flow = {"id": "mark", "nodes": {"m": {"type": "agent", "config": {
        "agent": "marker", "prompt": "go"}}}}
    MARKS.clear()
    run = fm_lab.run(flow, store=store)
    assert run.status == "suspended"
    run = fm_lab.resume(run.run_id, "XL", store=store)
    assert run.outputs["m"]["text"] == "Size XL"
    assert MARKS == ["before asking"]  # the tool ran once; its result was replayed
    assert run.state == {"marked": "before asking", "asked": "Size?"}


def test_suspending_outside_a_workflow_fails_clearly():
    agent = Agent("impatient", model=_asking_model("impatient"), tools=[ask_human])
    with pytest.raises(SuspendNotDurable, match="durable=True"):
        agent.generate("Ask for a colour")
