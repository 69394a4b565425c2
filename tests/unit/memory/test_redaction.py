"""Secrets never reach memory: messages (text, content parts, tool-call arguments, tool
results), their vector copies (LanceDB or pgvector) and vectors, working memory and summaries
are masked with the tracing redaction, for ``Memory.save`` and for an agent turn, on both
stores."""

import json
import uuid

import duckdb
import lancedb
import numpy as np

import fm_lab
from fm_lab.agents import Agent, tool
from fm_lab.llm import script
from fm_lab.memory import Memory, Recall, Summarizer, WorkingMemory
from fm_lab.memory.lance import lance_path, table_names
from fm_lab.tracing.redact import MASK

STORES = ("duckdb", "postgres")
TABLES = ("memory_messages", "memory_threads", "memory_working", "memory_summaries")


def planted():
    """A fresh API-style key and a fresh ``fm_lab.secret`` value."""
    return f"sk-test{uuid.uuid4().hex}", fm_lab.secret(f"pw-{uuid.uuid4().hex[:12]}")


def on_postgres(store):
    return hasattr(store, "url")


def stored_text(store):
    """Every memory table of the store and every vector table (LanceDB's or pgvector's),
    as one string."""
    out = []
    if on_postgres(store):
        for table in (*TABLES, "memory_vectors"):
            out.append(str(store.sql(f"select * from {table}").values.tolist()))
        return "\n".join(out)
    with duckdb.connect(str(store.path), read_only=True) as con:
        for table in TABLES:
            out.append(str(con.execute(f"select * from {table}").fetchall()))
    db = lancedb.connect(str(lance_path(store.path)))
    for name in table_names(db):
        out.append(str(db.open_table(name).to_arrow().drop_columns(["vector"]).to_pylist()))
    return "\n".join(out)


def first_vector(store):
    """The stored vector of the thread's first message."""
    if on_postgres(store):
        text = store.sql("select embedding::text as v from memory_vectors "
                         "order by sequence limit 1")["v"][0]
        return np.asarray(json.loads(text), np.float32)
    vectors = lancedb.connect(str(lance_path(store))).open_table("memory_messages")
    return np.asarray(vectors.to_pandas().sort_values("sequence").iloc[0]["vector"])


def disk(store):
    """What holds the store's bytes: the DuckDB file, its WAL, journals and LanceDB folder,
    or the PostgreSQL server's data folder (tables and WAL)."""
    if on_postgres(store):
        return [store.sql("select current_setting('data_directory') as d")["d"][0]]
    path = store.path
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
    text = stored_text(store)
    assert MASK in text and key not in text and word not in text
    # the vector is the masked text's, and recall still finds it
    expected = memory.embedder.embed([f"my key is {MASK} and my password is {MASK}"])[0]
    assert first_vector(store).tolist() == expected.tolist()
    found = await memory.recall("password", thread_id="t")
    assert key not in json.dumps([s.message for s in found])
    where = disk(store)
    store.close()
    assert files_containing(where, key, word) == []


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
    text = stored_text(store)
    assert "the user gave" in text and MASK in text
    assert key not in text and word not in text
    where = disk(store)
    store.close()
    assert files_containing(where, key, word) == []
