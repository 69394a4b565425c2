"""Secrets never reach memory: messages (text, content parts, tool-call arguments, tool
results), their LanceDB copies and vectors, working memory and summaries are masked with the
tracing redaction, for ``Memory.save`` and for an agent turn."""

import json
import uuid

import duckdb
import lancedb

import fm_lab
from fm_lab.agents import Agent, tool
from fm_lab.llm import script
from fm_lab.memory import Memory, Recall, Summarizer, WorkingMemory
from fm_lab.memory.lance import lance_path, table_names
from fm_lab.tracing.redact import MASK


def planted():
    """A fresh API-style key and a fresh ``fm_lab.secret`` value."""
    return f"sk-test{uuid.uuid4().hex}", fm_lab.secret(f"pw-{uuid.uuid4().hex[:12]}")


def stored_text(path):
    """Every memory table of the DuckDB file and every LanceDB table, as one string."""
    out = []
    with duckdb.connect(str(path), read_only=True) as con:
        for table in ("memory_messages", "memory_threads", "memory_working",
                      "memory_summaries"):
            out.append(str(con.execute(f"select * from {table}").fetchall()))
    db = lancedb.connect(str(lance_path(path)))
    for name in table_names(db):
        out.append(str(db.open_table(name).to_arrow().drop_columns(["vector"]).to_pylist()))
    return "\n".join(out)


def disk(path):
    return [path, lance_path(path), f"{path}.wal", f"{path}.journal"]


async def test_memory_save_masks_every_part_of_a_message(store, files_containing):
    key, word = planted()
    memory = Memory(store=store, recall=Recall(top_k=2))
    await memory.save(thread_id="t", resource_id="r", messages=[
        {"role": "user", "content": f"my key is {key} and my password is {word}"},
        {"role": "user", "content": [{"type": "text", "text": f"again: {key}"}]},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function",
            "function": {"name": "login", "arguments": json.dumps({"key": key})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": f"logged in with {word}"},
    ])
    rows = memory.messages("t")
    assert rows["text"].str.contains(MASK, regex=False).all()
    text = stored_text(store.path)
    assert MASK in text and key not in text and word not in text
    # the vector is the masked text's, and recall still finds it
    vectors = lancedb.connect(str(lance_path(store))).open_table("memory_messages")
    first = vectors.to_pandas().sort_values("sequence").iloc[0]
    expected = memory.embedder.embed([f"my key is {MASK} and my password is {MASK}"])[0]
    assert list(first["vector"]) == list(expected)
    found = await memory.recall("password", thread_id="t")
    assert key not in json.dumps([s.message for s in found])
    store.close()
    assert files_containing(disk(store.path), key, word) == []


def _chatty_model():
    """Saves what the user said in working memory, has it echoed by a tool, then answers
    with it."""
    def reply(messages, tools):
        since = max(i for i, m in enumerate(messages) if m["role"] == "user")
        user, done = messages[since]["content"], len(messages) - since - 1
        if done == 0:
            return {"tool_calls": [{"name": "update_working_memory",
                                    "arguments": {"text": f"- Key: {user}"}}]}
        if done == 2:
            return {"tool_calls": [{"name": "echo", "arguments": {"text": user}}]}
        return f"noted: {user}"
    return script("redaction-chatty", fn=reply)


@tool
def echo(text: str) -> str:
    """Echo."""
    return text


async def test_agent_turn_with_memory_stores_no_secret(store, files_containing):
    key, word = planted()
    echo_summary = script("redaction-summary",
                          fn=lambda messages, tools: f"the user gave {key} and {word}")
    memory = Memory(store=store, last_messages=2, recall=Recall(top_k=1),
                    working_memory=WorkingMemory(scope="resource"),
                    summary=Summarizer(echo_summary, threshold=1))
    agent = Agent("keeper", "Keep things.", model=_chatty_model(), tools=[echo], memory=memory)
    first = await agent.agenerate(f"{key} {word}", thread_id="t", resource_id="ada",
                                  store=store)  # the turn's trace goes to the same file
    assert first.text == f"noted: {key} {word}"  # the turn itself sees the real values
    await agent.agenerate("what do you know?", thread_id="t", resource_id="ada", store=store)
    assert len(fm_lab.trace(first.trace_id, store=store)) > 3
    assert memory.working("ada")["content"].str.contains(MASK, regex=False).all()
    text = stored_text(store.path)
    assert "the user gave" in text and MASK in text
    assert key not in text and word not in text
    store.close()
    assert files_containing(disk(store.path), key, word) == []
