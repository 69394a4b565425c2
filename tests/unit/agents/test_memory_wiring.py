"""Agents and memory: prepare before the first model call, save each new message once after
the turn, memory tools and system text, processors before every model call."""

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from fm_lab.agents import Agent, tool
from fm_lab.agents.memory_api import AgentMemory, MemoryContext, Processor
from fm_lab.llm import script


class DictMemory:
    """A real (if small) memory: threads of messages in a dict, working memory as a tool."""

    def __init__(self) -> None:
        self.threads: dict[str, list[dict[str, Any]]] = {}
        self.notes: dict[str, str] = {}
        self.prepared: list[tuple[str, str | None, str]] = []

        @tool
        def remember(note: str) -> str:
            """Keep a note about the user."""
            self.notes["user"] = note
            return "noted"

        self.tool = remember

    async def prepare(self, *, thread_id: str, resource_id: str | None,
                      query: str) -> MemoryContext:
        self.prepared.append((thread_id, resource_id, query))
        note = self.notes.get("user")
        return MemoryContext(messages=list(self.threads.get(thread_id, [])),
                             system=f"Known about the user: {note}" if note else None,
                             tools=[self.tool])

    async def save(self, *, thread_id: str, resource_id: str | None,
                   messages: Sequence[Mapping[str, Any]]) -> None:
        self.threads.setdefault(thread_id, []).extend(dict(m) for m in messages)


def _model():
    def reply(messages, tools):
        last = messages[-1]
        if last["role"] == "user" and last["content"].startswith("I am"):
            return {"tool_calls": [{"name": "remember", "arguments": {
                "note": last["content"]}}]}
        if last["role"] == "tool":
            return "Nice to meet you."
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        earlier = sum(1 for m in messages if m["role"] == "user") - 1
        return f"{earlier} earlier questions; {system.split(': ')[-1]}"
    return script("memo", fn=reply)


def test_memory_is_prepared_and_saved_once_per_message():
    memory = DictMemory()
    assert isinstance(memory, AgentMemory)
    agent = Agent("memo", "Be nice.", model=_model(), memory=memory)
    first = agent.generate("I am Ada, a chemist.", thread_id="t1", resource_id="ada")
    assert first.text == "Nice to meet you."
    assert [m["role"] for m in memory.threads["t1"]] == ["user", "assistant", "tool",
                                                         "assistant"]
    second = agent.generate("Who am I?", thread_id="t1", resource_id="ada")
    assert second.text == "1 earlier questions; I am Ada, a chemist."
    assert len(memory.threads["t1"]) == 6  # earlier messages were not saved twice
    assert memory.prepared[-1] == ("t1", "ada", "Who am I?")
    assert second.messages[0] == {"role": "user", "content": "I am Ada, a chemist."}


def test_memory_needs_a_thread():
    with pytest.raises(ValueError, match="thread_id"):
        Agent("memo", model=_model(), memory=DictMemory()).generate("hi")


class LastTwo:
    """Keeps system messages and the last two others."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def process(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.seen.append(len(messages))
        system = [m for m in messages if m["role"] == "system"]
        return system + [m for m in messages if m["role"] != "system"][-2:]


def test_processors_rewrite_messages_before_every_model_call():
    trimmer = LastTwo()
    assert isinstance(trimmer, Processor)
    sizes = []

    def reply(messages, tools):
        sizes.append(len(messages))
        if messages[-1]["role"] == "tool":
            return "done"
        return {"tool_calls": [{"name": "remember", "arguments": {"note": "x"}}]}

    memory = DictMemory()
    memory.threads["t"] = [{"role": "user", "content": f"old {i}"} for i in range(5)]
    agent = Agent("trim", "Sys.", model=script("trim", fn=reply), memory=memory,
                  processors=[trimmer])
    assert agent.generate("new", thread_id="t").text == "done"
    assert trimmer.seen == [7, 9] and sizes == [3, 3]
