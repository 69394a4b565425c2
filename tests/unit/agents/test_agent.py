"""Agents with typed tools on the offline provider: invalid arguments are fed back, not run."""

import json

import pytest

import fm_lab
from fm_lab.agents import Agent, tool
from fm_lab.llm import script

CALLS = []


@tool
def convert(amount: float, currency: str = "EUR") -> dict:
    """Convert an amount of euros."""
    CALLS.append((amount, currency))
    rate = {"EUR": 1.0, "USD": 1.1}[currency]
    return {"amount": round(amount * rate, 2), "currency": currency}


def test_tool_schema_comes_from_the_signature():
    schema = convert.schema()["function"]
    assert schema["name"] == "convert"
    assert schema["description"] == "Convert an amount of euros."
    assert schema["parameters"]["required"] == ["amount"]
    assert schema["parameters"]["properties"]["amount"]["type"] == "number"


def _model_that_fixes_its_arguments():
    def reply(messages, tools):
        tool_results = [m for m in messages if m["role"] == "tool"]
        if not tool_results:
            return {"tool_calls": [{"name": "convert", "arguments": {"amount": "lots"}}]}
        if len(tool_results) == 1:
            assert "invalid and the tool was not run" in tool_results[0]["content"]
            return {"tool_calls": [{"name": "convert",
                                    "arguments": {"amount": 10, "currency": "USD"}}]}
        result = json.loads(tool_results[-1]["content"])
        return f"That is {result['amount']} {result['currency']}."
    return script("converter", fn=reply)


def test_invalid_arguments_are_fed_back_and_corrected():
    CALLS.clear()
    agent = Agent("fx", "Convert money.", model=_model_that_fixes_its_arguments(),
                  tools=[convert])
    result = agent.generate("10 euros in dollars?")
    assert result.text == "That is 11.0 USD."
    assert CALLS == [(10.0, "USD")]  # the invalid call never ran
    assert [c["ok"] for c in result.tool_calls] == [False, True]
    assert result.steps == 3 and result.usage["input_tokens"] > 0


def test_agent_spans_nest_tools_and_llm_calls_inside_a_node():
    store = fm_lab.Store(":memory:")
    agent = Agent("fx", model=_model_that_fixes_its_arguments(), tools=[convert])

    @fm_lab.register_function(name="ask_fx_agent")
    async def ask():
        return (await agent.agenerate("10 euros in dollars?")).text

    run = fm_lab.run({"id": "w", "nodes": {"ask": {"type": "code", "config": {
        "function": "ask_fx_agent"}}}}, store=store)
    assert run.outputs == {"ask": "That is 11.0 USD."}
    tree = fm_lab.trace(run.run_id, store=store)
    kinds = list(zip(tree["depth"], tree["kind"], strict=True))
    assert kinds[:3] == [(0, "workflow"), (1, "node"), (2, "agent")]
    assert {k for d, k in kinds if d == 3} == {"llm", "tool"}
    assert fm_lab.usage("agent", store=store)["agent"].tolist() == ["fx"]


def test_max_steps_bounds_a_model_that_never_stops():
    loop = script("looper", default={"tool_calls": [{"name": "convert",
                                                      "arguments": {"amount": 1}}]})
    with pytest.raises(RuntimeError, match="max_steps=2"):
        Agent("stuck", model=loop, tools=[convert], max_steps=2).generate("go")


def test_unknown_tools_and_tool_failures_go_back_to_the_model():
    @tool
    def fragile(x: int) -> int:
        """Fails on zero."""
        return 10 // x

    def reply(messages, tools):
        results = [m["content"] for m in messages if m["role"] == "tool"]
        if not results:
            return {"tool_calls": [{"name": "missing", "arguments": {}}]}
        if len(results) == 1:
            assert "no tool named 'missing'" in results[0] and "fragile" in results[0]
            return {"tool_calls": [{"name": "fragile", "arguments": {"x": 0}}]}
        if len(results) == 2:
            assert "ZeroDivisionError" in results[1]
            return {"tool_calls": [{"name": "fragile", "arguments": {"x": 5}}]}
        return f"result {results[2]}"

    result = Agent("careful", model=script("careful", fn=reply), tools=[fragile]).generate("go")
    assert result.text == "result 2"
    assert [c["ok"] for c in result.tool_calls] == [False, False, True]
    assert result.tool_calls[1]["error"].startswith("ZeroDivisionError")
