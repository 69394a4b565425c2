"""Memory wired into fm_lab.Agent (the agent prepares before a turn and saves after it), across
two Memory objects on one store (two handles, as two kernels have): working memory through the
tool, recall across threads of a resource; on DuckDB and on PostgreSQL (pgvector)."""

import re

import pytest

from fm_lab.agents import Agent
from fm_lab.llm import script
from fm_lab.memory import Memory, Recall, WorkingMemory

STORES = ("duckdb", "postgres")


@pytest.fixture(autouse=True)
def _hashing_by_default(monkeypatch):
    monkeypatch.delenv("FM_LAB_EMBEDDING_MODEL", raising=False)

def reply(messages, tools):
    last = messages[-1]
    if last["role"] == "tool":
        return "Noted."
    text = last["content"]
    system = " ".join(m["content"] for m in messages if m["role"] == "system")
    if m := re.search(r"my name is (\w+)", text):
        return {"tool_calls": [{"name": "update_working_memory",
                                "arguments": {"text": f"- Name: {m[1]}"}}]}
    if "what is my name" in text:
        found = re.search(r"- Name: (\w+)", system)
        return f"You are {found[1]}." if found else "I don't know."
    if "favourite colour" in text and "?" in text:
        for earlier in messages[:-1]:
            if found := re.search(r"favourite colour is (\w+)", str(earlier.get("content"))):
                return f"It is {found[1]}."
        return "I don't know."
    return "OK."


async def turn(memory, model, thread, resource, text):
    agent = Agent("helper", "Be brief.", model=model, memory=memory)
    result = await agent.agenerate(text, thread_id=thread, resource_id=resource)
    return result.text


def make(store):
    return Memory(store=store, last_messages=4,
                  recall=Recall(top_k=2, message_range=1, scope="resource"),
                  working_memory=WorkingMemory(scope="resource"))


async def test_agent_remembers_across_threads_and_sessions(store, reopen):
    model = script("memory-agent", fn=reply)
    first = make(store)
    assert await turn(first, model, "ana-1", "ana", "Hello, my name is Ana") == "Noted."
    assert await turn(first, model, "ana-1", "ana", "my favourite colour is teal") == "OK."
    for i in range(4):
        await turn(first, model, "ana-1", "ana", f"small talk {i}")
    # a new session (another Memory on another handle), another thread of the same resource
    second = make(reopen(store))
    assert await turn(second, model, "ana-2", "ana", "what is my name") == "You are Ana."
    assert await turn(second, model, "ana-2", "ana", "what is my favourite colour?") == \
        "It is teal."
    # another resource sees neither
    assert await turn(second, model, "bo-1", "bo", "what is my name") == "I don't know."
    assert await turn(second, model, "bo-1", "bo", "what is my favourite colour?") == \
        "I don't know."
    history = second.messages("ana-1")
    # user, assistant(tool call), tool, assistant, then 5 x (user, assistant): nothing twice
    assert len(history) == 4 + 5 * 2
    assert history["role"].tolist()[:4] == ["user", "assistant", "tool", "assistant"]
    threads = second.threads()
    assert set(threads["thread_id"]) == {"ana-1", "ana-2", "bo-1"}
    assert dict(zip(threads["thread_id"], threads["messages"], strict=True))["ana-2"] == 4
