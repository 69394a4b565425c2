"""History in DuckDB: sequences, idempotent saves, last-N, context windows at thread edges."""

import pytest

from fm_lab.memory import Memory, Recall, ThreadResourceError
from fm_lab.memory.history import History

STORES = ("duckdb", "postgres")

TOPICS = ["apples", "bananas", "cherries", "dates", "elderberries", "figs", "grapes", "kiwis"]


def turn(i):
    return [{"role": "user", "content": f"tell me about {TOPICS[i]}"},
            {"role": "assistant", "content": f"{TOPICS[i]} are fruit number {i}"}]


async def test_incremental_saves_never_duplicate(memory, store):
    first = turn(0)
    await memory.save(thread_id="t", resource_id="r", messages=first)
    await memory.save(thread_id="t", resource_id="r", messages=first)  # the same dicts again
    second = turn(1)
    await memory.save(thread_id="t", resource_id="r", messages=[*first, *second])
    await memory.save(thread_id="t", resource_id="r", messages=[{"role": "user", "content": "x",
                                                                  "id": "m-1"}])
    await memory.save(thread_id="t", resource_id="r", messages=[{"role": "user", "content": "x",
                                                                  "id": "m-1"}])
    df = memory.messages("t")
    assert df["sequence"].tolist() == [1, 2, 3, 4, 5]
    assert df["text"].tolist()[:4] == [m["content"] for m in [*first, *second]]
    assert memory.vectors.count() == 5


async def test_messages_returned_by_prepare_are_not_saved_again(memory):
    await memory.save(thread_id="t", resource_id=None, messages=turn(0))
    ctx = await memory.prepare(thread_id="t", resource_id=None, query="")
    await memory.save(thread_id="t", resource_id=None, messages=[*ctx.messages, *turn(1)])
    assert len(memory.messages("t")) == 4


async def test_identical_text_in_new_dicts_is_a_new_message(memory):
    for _ in range(2):
        await memory.save(thread_id="t", resource_id=None,
                          messages=[{"role": "user", "content": "ok"}])
    assert memory.messages("t")["text"].tolist() == ["ok", "ok"]


async def test_last_n_and_round_trip_of_tool_calls(store):
    memory = Memory(store=store, last_messages=3, recall=False)
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
    msgs = [{"role": "user", "content": [{"type": "text", "text": "add"}]},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "name": "add", "content": "3"},
            {"role": "assistant", "content": "3"}]
    await memory.save(thread_id="t", resource_id=None, messages=msgs)
    ctx = await memory.prepare(thread_id="t", resource_id=None, query="add")
    # the last 3 start at the tool-call message: the pair stays whole
    assert ctx.messages == [{"role": "assistant", "content": None, "tool_calls": [call]},
                            {"role": "tool", "tool_call_id": "c1", "name": "add",
                             "content": "3"},
                            {"role": "assistant", "content": "3"}]
    ctx = await Memory(store=store, last_messages=2, recall=False).prepare(
        thread_id="t", resource_id=None, query="")
    assert ctx.messages == [{"role": "assistant", "content": "3"}]  # orphan result dropped


async def test_context_windows_at_thread_boundaries(store):
    memory = Memory(store=store, last_messages=2, recall=Recall(top_k=1, message_range=2))
    for i in range(4):
        await memory.save(thread_id="a", resource_id="r", messages=turn(i))
        await memory.save(thread_id="b", resource_id="r", messages=turn(i + 4))
    # sequence 2 of "a" is the first assistant message: the window is 1..4, never "b"
    hits = await memory.recall("apples fruit number 0", thread_id="a", resource_id="r",
                               live_from=7)
    assert [(s.thread_id, s.sequence) for s in hits] == [("a", 1), ("a", 2), ("a", 3), ("a", 4)]
    # a hit on the thread's first message: nothing before it
    hits = await memory.recall("tell me about apples", thread_id="a", live_from=7,
                               message_range={"before": 3, "after": 1})
    assert [s.sequence for s in hits] == [1, 2]
    # near the live window: neighbours stop before it (they are in the last N already)
    hits = await memory.recall("cherries are fruit number 2", thread_id="a", live_from=7,
                               message_range=3)
    assert [s.sequence for s in hits] == [3, 4, 5, 6]
    ctx = await memory.prepare(thread_id="a", resource_id="r", query="cherries fruit number 2")
    assert [m["content"] for m in ctx.messages] == [
        "bananas are fruit number 1", "tell me about cherries", "cherries are fruit number 2",
        "tell me about dates", "dates are fruit number 3"]


async def test_resource_scope_never_leaks(store):
    memory = Memory(store=store, last_messages=1, recall=Recall(top_k=5, message_range=1,
                                                                 scope="resource"))
    await memory.save(thread_id="alice-1", resource_id="alice",
                      messages=[{"role": "user", "content": "my secret code is 1234"}])
    await memory.save(thread_id="alice-2", resource_id="alice",
                      messages=[{"role": "user", "content": "what is my secret code"}])
    await memory.save(thread_id="bob-1", resource_id="bob",
                      messages=[{"role": "user", "content": "my secret code is 9999"}])
    ctx = await memory.prepare(thread_id="alice-2", resource_id="alice", query="secret code")
    texts = [m["content"] for m in ctx.messages]
    assert "my secret code is 1234" in texts and "my secret code is 9999" not in texts
    ctx = await memory.prepare(thread_id="bob-2", resource_id="bob", query="secret code")
    assert [m["content"] for m in ctx.messages] == ["my secret code is 9999"]
    thread_only = Memory(store=store, last_messages=1, recall=Recall(top_k=5))
    ctx = await thread_only.prepare(thread_id="alice-2", resource_id="alice", query="secret")
    assert [m["content"] for m in ctx.messages] == ["what is my secret code"]


async def test_thread_belongs_to_one_resource(memory):
    await memory.save(thread_id="t", resource_id="alice", messages=turn(0))
    with pytest.raises(ThreadResourceError, match="belongs to resource 'alice'"):
        await memory.save(thread_id="t", resource_id="bob", messages=turn(1))
    assert len(memory.messages("t")) == 2


async def test_bad_input_is_named(memory):
    with pytest.raises(ValueError, match="message 1 has role 'robot'"):
        await memory.save(thread_id="t", resource_id=None,
                          messages=[{"role": "user", "content": "a"}, {"role": "robot"}])
    with pytest.raises(ValueError, match="tool result without a tool_call_id"):
        await memory.save(thread_id="t", resource_id=None, messages=[{"role": "tool"}])
    with pytest.raises(ValueError, match="thread_id"):
        await memory.prepare(thread_id="", resource_id=None, query="")
    with pytest.raises(ValueError, match="message_range"):
        Recall(message_range={"around": 2})
    assert memory.messages("t").empty


async def test_delete_thread_removes_vectors(memory, store):
    await memory.save(thread_id="t", resource_id=None, messages=turn(0))
    await memory.save(thread_id="u", resource_id=None, messages=turn(1))
    assert memory.vectors.count() == 4
    import fm_lab.memory as fmm

    assert fmm.delete_thread("t", store=store) == 2
    assert memory.vectors.count() == 2
    assert fmm.threads(store)["thread_id"].tolist() == ["u"]
    assert fmm.messages("t", store).empty
    assert History(store).last("u", 5)[0].text == "tell me about bananas"


async def test_memory_store_and_module_level_views(tmp_path):
    import fm_lab.memory as fmm

    memory = Memory(store=":memory:", last_messages=5, working_memory=True)
    await memory.save(thread_id="t", resource_id="r", messages=turn(2))
    ctx = await memory.prepare(thread_id="t", resource_id="r", query="cherries")
    assert [m["content"] for m in ctx.messages] == [m["content"] for m in turn(2)]
    await ctx.tools[0].call(ctx.tools[0].parse({"text": "- Name: Rui"}))
    assert fmm.working("r", memory.store)["content"][0].count("Rui") == 1
    assert fmm.threads(memory.store)[["thread_id", "resource_id", "messages"]].values.tolist() \
        == [["t", "r", 2]]
    assert memory.vectors.path.exists()  # a temporary LanceDB folder for a memory store
