"""Tool results are checked against the tool's return annotation (or ``output=``): a wrong
result goes back to the model as a tool error, is traced on the tool span, and the model can
call again."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel

import fm_lab
from fm_lab.agents import Agent, ToolOutputError, tool
from fm_lab.llm import script


class Price(BaseModel):
    amount: float
    currency: str


@tool
def price(sku: str, style: str = "data") -> Price:
    """The price of a product."""
    if style == "text":
        return "9.50 EUR"  # type: ignore[return-value]  # the bug the check catches
    return Price(amount=9.5, currency="EUR")


def _model_that_corrects_itself() -> str:
    def reply(messages: list[dict[str, Any]], tools: Any) -> Any:
        results = [m for m in messages if m["role"] == "tool"]
        if not results:
            return {"tool_calls": [{"name": "price", "arguments": {"sku": "a1",
                                                                    "style": "text"}}]}
        if "returned an invalid result" in results[-1]["content"]:
            return {"tool_calls": [{"name": "price", "arguments": {"sku": "a1"}}]}
        found = json.loads(results[-1]["content"])
        return f"It costs {found['amount']} {found['currency']}."

    return script("pricer", fn=reply)


def test_a_wrong_result_is_a_tool_error_the_model_sees_and_corrects() -> None:
    agent = Agent("shop", "Quote prices.", model=_model_that_corrects_itself(), tools=[price])
    result = agent.generate("How much is a1?")
    assert result.text == "It costs 9.5 EUR."
    first, second = result.tool_calls
    assert (first["ok"], first["error"]) == (False, "invalid output")
    assert second["ok"] and second["output"] == {"amount": 9.5, "currency": "EUR"}
    [feedback, good] = [m for m in result.messages if m["role"] == "tool"]
    assert "returned an invalid result" in feedback["content"]
    assert "valid dictionary or instance of Price" in feedback["content"]
    assert json.loads(good["content"]) == {"amount": 9.5, "currency": "EUR"}

    spans = fm_lab.trace(result.trace_id)
    tools = spans[spans["kind"] == "tool"].sort_values("started_at")
    assert tools["status"].tolist() == ["error", "ok"]
    bad = tools.iloc[0]
    error = bad["error"] if isinstance(bad["error"], dict) else json.loads(bad["error"])
    assert error["type"] == "ToolOutputError" and "Price" in error["message"]
    assert "9.50 EUR" in str(bad["output"])  # what the tool returned, for the post-mortem


def test_output_types_from_annotations_or_explicitly() -> None:
    @tool
    def count(text: str) -> int:
        "Count words."
        return text  # type: ignore[return-value]

    with pytest.raises(ToolOutputError, match="tool 'count' returned an invalid result"):
        count.check_output("many words")
    assert count.check_output(3) == 3

    @tool(output=list[str])
    def words(text: str):  # type: ignore[no-untyped-def]
        "Split words."
        return text.split()

    assert words.check_output(["a"]) == ["a"]
    with pytest.raises(ToolOutputError, match="result: Input should be a valid list"):
        words.check_output("a b")

    @tool
    def anything(x: int) -> Any:
        "No check."
        return x

    @tool
    def unannotated(x: int):  # type: ignore[no-untyped-def]
        "No check either."
        return x

    assert anything.output_adapter is None and unannotated.output_adapter is None

    @tool
    def table(rows: int) -> pd.DataFrame:
        "A plain class is checked with isinstance."
        return pd.DataFrame({"n": range(rows)})

    frame = pd.DataFrame({"n": [1]})
    assert table.check_output(frame) is frame
    with pytest.raises(ToolOutputError, match="DataFrame"):
        table.check_output({"n": [1]})
