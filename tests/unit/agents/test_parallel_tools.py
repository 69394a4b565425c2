"""The tool calls of one model answer run concurrently; results go back in call order; in a
durable run, calls that can suspend run in order and what finished is kept."""

import asyncio
import json

import litellm

import fm_lab
from fm_lab.agents import Agent, ToolContext, tool
from fm_lab.llm import script

EVENTS: list[str] = []
RELEASE: dict[str, asyncio.Event] = {}


@tool
async def fetch(url: str) -> dict:
    """Fetch a page."""
    EVENTS.append(f"start {url}")
    if url == "slow":  # finishes only once "fast" has started: a deadlock if run in order
        await asyncio.wait_for(RELEASE["fast started"].wait(), 5)
    else:
        RELEASE["fast started"].set()
    EVENTS.append(f"end {url}")
    return {"url": url}


def _fetch_both(name: str) -> str:
    def reply(messages, tools):
        results = [m for m in messages if m["role"] == "tool"]
        if results:
            return "got " + ", ".join(json.loads(m["content"])["url"] for m in results)
        return {"tool_calls": [{"id": "c1", "name": "fetch", "arguments": {"url": "slow"}},
                               {"id": "c2", "name": "fetch", "arguments": {"url": "fast"}}]}
    return script(name, fn=reply)


async def test_calls_of_one_answer_overlap_and_come_back_in_call_order():
    EVENTS.clear()
    RELEASE["fast started"] = asyncio.Event()
    result = await Agent("reader", model=_fetch_both("reader"), tools=[fetch]).agenerate("go")
    assert EVENTS == ["start slow", "start fast", "end fast", "end slow"]
    assert result.text == "got slow, fast"  # call order, not finishing order
    assert [c["output"]["url"] for c in result.tool_calls] == ["slow", "fast"]


@tool
def note(text: str) -> str:
    """Write a note."""
    EVENTS.append(text)
    return "noted"


async def test_parallel_tools_false_runs_them_one_after_another():
    EVENTS.clear()

    def reply(messages, tools):
        if messages[-1]["role"] == "tool":
            return "done"
        return {"tool_calls": [{"id": f"n{i}", "name": "note", "arguments": {"text": str(i)}}
                               for i in range(3)]}

    agent = Agent("scribe", model=script("scribe", fn=reply), tools=[note],
                  parallel_tools=False)
    assert (await agent.agenerate("go")).text == "done"
    assert EVENTS == ["0", "1", "2"]


RUNS = {"lookup": 0}


@tool
async def lookup(city: str) -> dict:
    """Weather for a city."""
    RUNS["lookup"] += 1
    await asyncio.sleep(0)
    return {"city": city, "sky": "clear"}


@tool
async def approve(amount: float, ctx: ToolContext) -> dict:
    """Ask a person."""
    decision = await ctx.suspend({"amount": amount}, label="approve",
                                 schema={"type": "object", "required": ["ok"]})
    return {"approved": decision["ok"]}


def test_a_suspending_call_waits_for_its_siblings_which_are_not_run_again(tmp_path):
    def reply(messages, tools):
        if messages[-1]["role"] == "tool":
            contents = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
            return f"approved={contents[0]['approved']} sky={contents[1]['sky']}"
        return {"tool_calls": [{"id": "a", "name": "approve", "arguments": {"amount": 5}},
                               {"id": "w", "name": "lookup", "arguments": {"city": "Oslo"}}]}

    agent = Agent("clerk", model=script("clerk", fn=reply), tools=[approve, lookup],
                  durable=True)
    store = fm_lab.Store(tmp_path / "s.duckdb")
    RUNS["lookup"] = 0
    waiting = agent.generate("go", store=store)
    assert waiting.status == "suspended" and RUNS["lookup"] == 1  # the sibling finished
    run = fm_lab.resume(waiting.run_id, {"ok": True}, store=store)
    assert run.outputs["agent"]["text"] == "approved=True sky=clear"
    assert RUNS["lookup"] == 1  # journaled: replayed, not run again


async def test_the_result_and_finish_chunk_name_the_model_that_answered():
    error = litellm.RateLimitError("slow down", llm_provider="openai", model="gpt-4o")
    agent = Agent("fb", model="gpt-4o", fallbacks=["gpt-4o-mini"], model_params={
        "retries": 0, "model_params": {"gpt-4o": {"mock_response": error},
                                       "gpt-4o-mini": {"mock_response": "from the fallback"}}})
    result = await agent.agenerate("hi")
    assert result.text == "from the fallback" and result.model == "gpt-4o-mini"
    chunks = [c async for c in agent.astream("hi")]
    assert chunks[-1].type == "finish" and chunks[-1].model == "gpt-4o-mini"
