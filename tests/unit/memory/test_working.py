"""Working memory: append with duplicate detection, search/replace, schema merge, the tool,
100 concurrent updates, and two processes updating one key."""

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest
from pydantic import BaseModel

from fm_lab.memory import Memory, WorkingMemory, WorkingMemoryError

STORES = ("duckdb", "postgres")


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


async def test_append_fills_fields_and_skips_duplicates(store):
    wm = WorkingMemory(scope="resource", template="# User\n- Name:\n- City:\n", store=store)
    r = await wm.update("alice", "- Name: Alice")
    assert r.changed and lines(r.content) == ["# User", "- Name: Alice", "- City:"]
    r = await wm.update("alice", "likes tea\n-   Name:   alice ")
    assert lines(r.content)[-1] == "likes tea" and r.content.count("Name") == 1
    r = await wm.update("alice", "Likes  TEA")
    assert not r.changed and "already" in r.message
    r = await wm.update("alice", "- City: Lisbon", search="- City:")
    assert "- City: Lisbon" in r.content and r.version == 3
    with pytest.raises(WorkingMemoryError, match="not in working memory"):
        await wm.update("alice", "x", search="- Country:")
    assert wm.get("alice") == r.content
    r = await wm.update("alice", "# User\n- Name: A.", replace_all=True)
    assert wm.get("alice") == "# User\n- Name: A.\n"


class Profile(BaseModel):
    name: str | None = None
    languages: list[str] = []
    prefs: dict[str, str] = {}


async def test_schema_memory_merges_and_validates(store):
    wm = WorkingMemory(scope="thread", schema=Profile, store=store)
    await wm.update("t", json.dumps({"name": "Ana", "languages": ["pt"]}))
    await wm.update("t", json.dumps({"languages": ["pt", "en"], "prefs": {"tea": "green"}}))
    r = await wm.update("t", json.dumps({"languages": ["en"]}))
    assert not r.changed
    assert json.loads(wm.get("t")) == {"name": "Ana", "languages": ["pt", "en"],
                                       "prefs": {"tea": "green"}}
    with pytest.raises(WorkingMemoryError, match="does not fit"):
        await wm.update("t", json.dumps({"languages": "pt"}))
    with pytest.raises(WorkingMemoryError, match="JSON object"):
        await wm.update("t", "name: Ana")


async def test_tool_and_system_text_through_prepare(store):
    memory = Memory(store=store, recall=False, working_memory=WorkingMemory(scope="resource"))
    ctx = await memory.prepare(thread_id="t1", resource_id="alice", query="hi")
    (tool,) = ctx.tools
    assert tool.name == "update_working_memory" and "<working_memory>" in ctx.system
    assert (await tool.call(tool.parse({"text": "- Name: Alice"}))).startswith("working memory")
    out = await tool.call(tool.parse('{"text": "x", "search": "nowhere"}'))
    assert out.startswith("working memory not changed")
    ctx = await memory.prepare(thread_id="t2", resource_id="alice", query="hi")  # same resource
    assert "- Name: Alice" in ctx.system
    ctx = await memory.prepare(thread_id="t3", resource_id="bob", query="hi")
    assert "Alice" not in ctx.system
    df = memory.working("alice")
    assert df["version"].tolist() == [1] and "Alice" in df["content"][0]


async def test_100_concurrent_updates_lose_nothing_and_add_no_duplicate(store):
    memory = Memory(store=store, recall=False,
                    working_memory=WorkingMemory(scope="thread", template="# Facts\n"))
    ctx = await memory.prepare(thread_id="t", resource_id=None, query="")
    (tool,) = ctx.tools
    facts = [f"fact number {i % 50}" for i in range(100)]  # each fact sent twice
    results = await asyncio.gather(*(tool.call(tool.parse({"text": f})) for f in facts))
    content = memory.working("t")["content"][0]
    assert sorted(lines(content)[1:]) == sorted({f for f in facts})
    assert sum(r.startswith("already") for r in results) == 50
    assert memory.working("t")["version"][0] == 50


def test_two_processes_update_one_key(store, tmp_path):
    target = getattr(store, "url", store.path)
    script = textwrap.dedent(f"""
        import asyncio, sys
        from fm_lab.store import open_store
        from fm_lab.memory import WorkingMemory
        wm = WorkingMemory(scope="resource", template="", store=open_store({str(target)!r}))
        async def main():
            for i in range(15):
                await wm.update("shared", f"{{sys.argv[1]}} line {{i}}")
        asyncio.run(main())
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("p", "q")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    content = WorkingMemory(scope="resource", template="", store=store).get("shared")
    assert sorted(lines(content)) == sorted(f"{n} line {i}" for n in "pq" for i in range(15))


async def test_a_lost_compare_and_swap_reapplies_on_fresh_content(store):
    other = WorkingMemory(scope="thread", template="", store=store)

    class Racing(WorkingMemory):
        raced = False

        def apply(self, content, text, **kw):
            if not self.raced:  # another writer commits between our read and our swap
                self.raced = True
                other._swap("k", "from the other writer\n", 0)
            return super().apply(content, text, **kw)

    racing = Racing(scope="thread", template="", store=store)
    result = await racing.update("k", "mine")
    assert result.version == 2
    assert lines(racing.get("k")) == ["from the other writer", "mine"]
