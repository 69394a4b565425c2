"""Agents: a model, instructions and tools, looping until the model answers without a tool
call (or ``max_steps``). Every step is traced: agent → llm → tool spans."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from fm_lab.agents.tools import Tool, validation_feedback
from fm_lab.sync import run_sync
from fm_lab.tracing.spans import span


@dataclass
class AgentResult:
    """The answer, and what it took: steps, tool calls, token usage."""

    text: str | None
    messages: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    usage: dict[str, int] = field(default_factory=dict)


class Agent:
    """An agent over any litellm model.

    >>> agent = Agent("helper", "Be brief.", model="offline/echo")
    >>> agent.generate("hi").text  # doctest: +SKIP
    """

    def __init__(self, name: str, instructions: str = "", *, model: str | None = None,
                 fallbacks: list[str] | None = None, tools: list[Tool] | None = None,
                 max_steps: int = 8) -> None:
        from fm_lab.llm.defaults import default_model

        self.name = name
        self.instructions = instructions
        self.model = model or default_model()
        self.fallbacks = list(fallbacks or [])
        self.tools = {t.name: t for t in tools or []}
        self.max_steps = max_steps

    async def agenerate(self, message: str | list[dict[str, Any]]) -> AgentResult:
        """Answer ``message`` (a text, or a list of chat messages), calling tools as asked."""
        from fm_lab.llm.client import acomplete

        messages: list[dict[str, Any]] = []
        if self.instructions:
            messages.append({"role": "system", "content": self.instructions})
        messages += ([{"role": "user", "content": message}] if isinstance(message, str)
                     else list(message))
        result = AgentResult(None, messages)
        schemas = [t.schema() for t in self.tools.values()] or None
        with span(self.name, kind="agent", input={"message": message}, agent=self.name,
                  entity_id=self.name) as agent_span:
            while result.steps < self.max_steps:
                result.steps += 1
                extra: dict[str, Any] = {"tools": schemas} if schemas else {}
                answer = await acomplete(messages, model=self.model, fallbacks=self.fallbacks,
                                         **extra)
                for key, value in answer.usage.items():
                    result.usage[key] = result.usage.get(key, 0) + value
                if not answer.tool_calls:
                    result.text = answer.text
                    messages.append({"role": "assistant", "content": answer.text})
                    agent_span.output = answer.text
                    return result
                messages.append({"role": "assistant", "content": answer.text, "tool_calls": [
                    {"id": c["id"], "type": "function",
                     "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in answer.tool_calls]})
                for call in answer.tool_calls:
                    content = await self._run_tool(call, result)
                    messages.append({"role": "tool", "tool_call_id": call["id"],
                                     "content": content})
            agent_span.status = "error"
        raise RuntimeError(f"agent {self.name!r} did not finish within max_steps="
                           f"{self.max_steps}")

    async def _run_tool(self, call: dict[str, Any], result: AgentResult) -> str:
        found = self.tools.get(call["name"])
        record = {"name": call["name"], "arguments": call["arguments"], "ok": False}
        result.tool_calls.append(record)
        with span(call["name"], kind="tool", input={"arguments": call["arguments"]},
                  agent=self.name, entity_id=call["name"]) as tool_span:
            if found is None:
                tool_span.status = "error"
                return f"There is no tool named {call['name']!r}; tools: {sorted(self.tools)}."
            try:
                args = found.parse(call["arguments"])
            except (ValidationError, ValueError) as exc:
                tool_span.status = "error"
                record["error"] = "invalid arguments"
                return validation_feedback(found.name, exc)
            output = await found.call(args)
            record["ok"] = True
            record["output"] = output
            tool_span.output = output
            return output if isinstance(output, str) else json.dumps(output, default=str)

    def generate(self, message: str | list[dict[str, Any]]) -> AgentResult:
        """Synchronous :meth:`agenerate` (works inside Jupyter's running loop too)."""
        return run_sync(self.agenerate(message))
