"""Where an agent turn's time goes: memory reads and writes (history, working memory, LanceDB
recall, summaries, saving and indexing) are ``memory`` spans and each processor run a
``processor`` span, under the agent span, with their counts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import fm_lab
from fm_lab.agents import Agent
from fm_lab.llm import script
from fm_lab.memory import Memory, Recall, Summarizer, ToolCallFilter, WorkingMemory


@pytest.fixture(autouse=True)
def _hashing_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FM_LAB_EMBEDDING_MODEL", raising=False)


def reply(messages: list[dict[str, Any]], tools: Any) -> Any:
    last = messages[-1]
    if last["role"] == "tool":
        return "Noted."
    if m := re.search(r"my name is (\w+)", last["content"]):
        return {"tool_calls": [{"name": "update_working_memory",
                                "arguments": {"text": f"- Name: {m[1]}"}}]}
    return "OK."


def attributes(row: Any) -> dict[str, Any]:
    value = row["attributes"]
    return value if isinstance(value, dict) else json.loads(value)


def test_memory_and_processor_spans_nest_under_the_agent(tmp_path: Path) -> None:
    store = fm_lab.Store(tmp_path / "memory.duckdb")
    memory = Memory(store=store, last_messages=2, vectors="lancedb",
                    recall=Recall(top_k=2, message_range=1, scope="resource"),
                    working_memory=WorkingMemory(scope="resource"),
                    summary=Summarizer(script("condense", default="Ana said hello."),
                                       threshold=2))
    agent = Agent("helper", "Be brief.", model=script("spans-agent", fn=reply), memory=memory,
                  processors=[ToolCallFilter(exclude=["kb_search"])])
    first = agent.generate("Hello, my name is Ana", thread_id="t1", resource_id="ana",
                           store=store)
    for text in ("my favourite colour is teal", "what colour do I like?"):
        last = agent.generate(text, thread_id="t1", resource_id="ana", store=store)

    # the first turn wrote working memory through its tool
    spans = fm_lab.trace(first.trace_id, store=store)
    by_id = spans.set_index("span_id")
    [write] = spans[spans["name"] == "memory.working.write"].to_dict("records")
    assert by_id.loc[write["parent_span_id"], "name"] == "update_working_memory"
    assert attributes(write)["memory.changed"] is True

    spans = fm_lab.trace(last.trace_id, store=store)
    by_id = spans.set_index("span_id")
    [agent_span] = spans[spans["kind"] == "agent"]["span_id"]
    parents = {row["name"]: by_id.loc[row["parent_span_id"], "name"]
               for row in spans.to_dict("records") if row["parent_span_id"] in by_id.index}
    assert {name: parents[name] for name in (
        "memory.prepare", "memory.save", "ToolCallFilter", "memory.history", "memory.recall",
        "memory.working.read", "memory.summary", "memory.history.append", "memory.index",
    )} == {
        "memory.prepare": "helper", "memory.save": "helper", "ToolCallFilter": "helper",
        "memory.history": "memory.prepare", "memory.recall": "memory.prepare",
        "memory.working.read": "memory.prepare", "memory.summary": "memory.prepare",
        "memory.history.append": "memory.save", "memory.index": "memory.save",
    }
    assert by_id.loc[agent_span, "name"] == "helper"
    rows = {row["name"]: row for row in spans.to_dict("records")}
    assert {rows[n]["kind"] for n in parents if n.startswith("memory.")} == {"memory"}
    assert rows["ToolCallFilter"]["kind"] == "processor"
    recall = attributes(rows["memory.recall"])
    assert (recall["vectors"], recall["scope"]) == ("lancedb", "resource")
    assert recall["memory.hits"] == 2 and recall["memory.messages"] >= 2
    assert attributes(rows["memory.history"])["memory.messages"] == 2
    assert attributes(rows["memory.working.read"])["memory.chars"] > 0
    assert attributes(rows["memory.save"])["memory.messages"] == 2
    assert attributes(rows["memory.index"])["memory.vectors"] == 2
    processed = attributes(rows["ToolCallFilter"])
    assert processed["processor.messages_in"] == processed["processor.messages_out"] > 2
    summary_llm = spans[(spans["kind"] == "llm") & (spans["name"] == "offline/condense")]
    assert set(by_id.loc[summary_llm["parent_span_id"], "name"]) == {"memory.summary"}
    assert spans.loc[spans["kind"].isin(["memory", "processor"]), "duration_ms"].notna().all()

    # across turns: where the time went, by kind
    memory_spans = fm_lab.traces(kind="memory", store=store)
    assert set(memory_spans["trace_id"]) >= {first.trace_id, last.trace_id}
