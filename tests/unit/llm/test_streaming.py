"""Streaming: typed chunks from the offline provider and litellm's mocked streams, through
the client and through an agent's steps."""

import asyncio
import json

import litellm
import pytest

import fm_lab
from fm_lab.agents import Agent, ToolContext, tool
from fm_lab.llm import Finish, TextDelta, ToolCallChunk, astream, script
from fm_lab.llm.offline_tokens import count, count_messages

HELLO = [{"role": "user", "content": "hello there"}]


async def test_offline_stream_yields_text_pieces_then_finish_with_usage():
    model = script("streamer", default="The quick brown fox")
    chunks = [c async for c in astream(HELLO, model=model)]
    assert [c.type for c in chunks] == ["text-delta"] * 4 + ["finish"]
    assert "".join(c.text for c in chunks[:-1]) == "The quick brown fox"
    finish = chunks[-1]
    assert finish.text == "The quick brown fox" and finish.finish_reason == "stop"
    assert finish.usage["input_tokens"] == count_messages(HELLO)
    assert finish.usage["output_tokens"] == count("The quick brown fox") == 4


async def test_offline_stream_carries_tool_calls():
    model = script("stream_tools", default={"content": "Checking.", "tool_calls": [
        {"name": "weather", "arguments": {"city": "Oslo"}},
        {"name": "time", "arguments": {}}]})
    chunks = [c async for c in astream(HELLO, model=model)]
    calls = [c for c in chunks if isinstance(c, ToolCallChunk)]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("weather", {"city": "Oslo"}), ("time", {})]
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].to_dict()["type"] == "finish"


async def test_litellm_mocked_stream_and_fallback_before_the_first_chunk():
    error = litellm.RateLimitError("slow down", llm_provider="openai", model="gpt-4o")
    chunks = [c async for c in astream(
        HELLO, model="gpt-4o", fallbacks=["gpt-4o-mini"], retries=0,
        model_params={"gpt-4o": {"mock_response": error},
                      "gpt-4o-mini": {"mock_response": "streamed by the fallback"}})]
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == (
        "streamed by the fallback")
    assert chunks[-1].model == "gpt-4o-mini" and chunks[-1].usage["output_tokens"] > 0


@tool
def lookup(city: str, ctx: ToolContext) -> dict:
    """Weather for a city."""
    ctx.writer.write({"looking up": city})
    return {"city": city, "sky": "clear"}


def _weather_model(name):
    def reply(messages, tools):
        if messages[-1]["role"] == "tool":
            return f"It is {json.loads(messages[-1]['content'])['sky']} in Oslo."
        return {"tool_calls": [{"id": "call_1", "name": "lookup",
                                "arguments": {"city": "Oslo"}}]}
    return script(name, fn=reply)


def test_agent_stream_yields_every_step_and_ends_with_finish():
    agent = Agent("weather", "Answer about weather.", model=_weather_model("w1"),
                  tools=[lookup])
    chunks = list(agent.stream("Weather in Oslo?"))
    types = [c.type for c in chunks]
    assert types == ["tool-call", "tool-output", "tool-result", "text-delta", "text-delta",
                     "text-delta", "text-delta", "text-delta", "finish"]
    assert chunks[1].data == {"looking up": "Oslo"}
    assert chunks[2].result == {"city": "Oslo", "sky": "clear"} and chunks[2].ok
    assert all(c.agent == "weather" for c in chunks)
    finish = chunks[-1]
    assert isinstance(finish, Finish)
    assert finish.text == "It is clear in Oslo." and finish.steps == 2
    assert finish.usage == agent.generate("Weather in Oslo?").usage


async def test_agent_astream_spans_match_generate(tmp_path):
    store = fm_lab.Store(tmp_path / "s.duckdb")
    agent = Agent("weather2", model=_weather_model("w2"), tools=[lookup])

    @fm_lab.register_function(name="stream_weather")
    async def ask():
        return "".join([c.text async for c in agent.astream("Oslo?") if c.type == "text-delta"])

    run = fm_lab.run({"id": "w", "nodes": {"ask": {"type": "code", "config": {
        "function": "stream_weather"}}}}, store=store)
    assert run.outputs == {"ask": "It is clear in Oslo."}
    tree = fm_lab.trace(run.run_id, store=store)
    assert list(tree["kind"]) == ["workflow", "node", "agent", "llm", "tool", "llm"]
    usage = fm_lab.usage("agent", store=store)
    assert usage["calls"].tolist() == [2] and usage["input_tokens"].iloc[0] > 0
    store.close()


async def test_leaving_the_stream_early_aborts_the_turn():
    started, aborts = asyncio.Event(), []

    @tool
    async def slow(ctx: ToolContext) -> str:
        """Waits for the abort."""
        aborts.append(ctx.abort)
        started.set()
        await asyncio.sleep(30)
        return "never read"

    model = script("aborter", default={"tool_calls": [{"name": "slow", "arguments": {}}]})
    stream = Agent("a", model=model, tools=[slow]).astream("go")
    assert (await anext(stream)).type == "tool-call"
    await asyncio.wait_for(started.wait(), 5)
    await stream.aclose()
    assert aborts[0].is_set()


def test_stream_errors_surface_to_the_consumer():
    agent = Agent("broken", model="gpt-4o", model_params={
        "mock_response": litellm.AuthenticationError("bad key", llm_provider="openai",
                                                     model="gpt-4o")})
    with pytest.raises(fm_lab.NodeError, match="AuthenticationError"):
        list(agent.stream("hi"))


async def test_reasoning_streams_before_the_answer_and_is_counted():
    from fm_lab.llm import ReasoningDelta, acomplete

    model = script("thinker", default={"reasoning": "Two plus two is four.", "content": "4"})
    chunks = [c async for c in astream(HELLO, model=model)]
    assert [c.type for c in chunks] == ["reasoning"] * 5 + ["text-delta", "finish"]
    assert "".join(c.text for c in chunks if isinstance(c, ReasoningDelta)) == (
        "Two plus two is four.")
    answer = await acomplete(HELLO, model=model)
    assert answer.reasoning == "Two plus two is four." and answer.text == "4"
    reasoning = count("Two plus two is four.")
    assert answer.usage["reasoning_tokens"] == reasoning
    assert answer.usage["output_tokens"] == chunks[-1].usage["output_tokens"]
