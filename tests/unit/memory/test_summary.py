"""Summary memory: old messages are condensed by a (scripted offline) model past a threshold."""

from fm_lab.llm import script
from fm_lab.memory import Memory, Summarizer

STORES = ("duckdb", "postgres")


def summarize(messages, tools):
    prompt = messages[-1]["content"]
    new = [line for line in prompt.split("New messages:\n", 1)[1].splitlines() if line]
    prev = prompt.split("Summary so far:\n", 1)[1].split("\n\n", 1)[0]
    return f"{prev} + {len(new)} messages ({new[0]} .. {new[-1]})"


async def test_summary_condenses_messages_past_the_threshold(store):
    model = script("summarizer", fn=summarize)
    memory = Memory(store=store, last_messages=2, recall=False,
                    summary=Summarizer(model, threshold=4))
    for i in range(5):
        await memory.save(thread_id="t", resource_id=None,
                          messages=[{"role": "user", "content": f"m{i}"}])
    ctx = await memory.prepare(thread_id="t", resource_id=None, query="")
    assert ctx.system is None  # only 3 old messages (m0..m2): below the threshold
    for i in range(5, 8):
        await memory.save(thread_id="t", resource_id=None,
                          messages=[{"role": "user", "content": f"m{i}"}])
    ctx = await memory.prepare(thread_id="t", resource_id=None, query="")
    assert ctx.system == ("## Summary of earlier messages\n"
                          "(none) + 6 messages (user: m0 .. user: m5)")
    assert [m["content"] for m in ctx.messages] == ["m6", "m7"]
    await memory.save(thread_id="t", resource_id=None,
                      messages=[{"role": "user", "content": f"m{i}"} for i in range(8, 12)])
    ctx = await memory.prepare(thread_id="t", resource_id=None, query="")
    assert ctx.system.endswith("(none) + 6 messages (user: m0 .. user: m5) + "
                               "4 messages (user: m6 .. user: m9)")


async def test_without_a_window_every_message_is_summarised(store):
    model = script("summarizer", fn=summarize)
    memory = Memory(store=store, last_messages=0, recall=False,
                    summary=Summarizer(model, threshold=3))
    await memory.save(thread_id="t", resource_id=None,
                      messages=[{"role": "user", "content": f"m{i}"} for i in range(2)])
    assert (await memory.prepare(thread_id="t", resource_id=None, query="")).system is None
    await memory.save(thread_id="t", resource_id=None,
                      messages=[{"role": "user", "content": "m2"}])
    ctx = await memory.prepare(thread_id="t", resource_id=None, query="")
    assert ctx.messages == []
    assert ctx.system == ("## Summary of earlier messages\n"
                          "(none) + 3 messages (user: m0 .. user: m2)")
