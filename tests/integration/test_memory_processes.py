"""Two processes saving to one thread at once: sequences stay unique and gap-free, every
message is stored and indexed once, each process's messages keep their order; on DuckDB (one
writer at a time) and PostgreSQL (the thread's row lock)."""

import subprocess
import sys
import textwrap

import pytest

from fm_lab.memory import Memory

STORES = ("duckdb", "postgres")

SAVER = textwrap.dedent("""
    import asyncio, sys
    from fm_lab.memory import Memory
    from fm_lab.store import open_store
    memory = Memory(store=open_store(sys.argv[1]))
    async def main():
        for i in range(10):
            await memory.save(thread_id="shared", resource_id="team",
                              messages=[{"role": "user", "content": f"{sys.argv[2]} says {i}"}])
    asyncio.run(main())
""")


@pytest.fixture(autouse=True)
def _hashing_by_default(monkeypatch):
    monkeypatch.delenv("FM_LAB_EMBEDDING_MODEL", raising=False)

def test_two_processes_save_to_one_thread(store):
    target = str(getattr(store, "url", store.path))
    procs = [subprocess.Popen([sys.executable, "-c", SAVER, target, name]) for name in "pq"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    memory = Memory(store=store)
    df = memory.messages("shared")
    assert df["sequence"].tolist() == list(range(1, 21))
    for name in "pq":
        mine = [t for t in df["text"] if t.startswith(name)]
        assert mine == [f"{name} says {i}" for i in range(10)]
    assert memory.vectors.count() == 20
