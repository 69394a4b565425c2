"""Agent memory benchmark: semantic recall with context windows over 100,000 stored messages
(hashing embedder, vectors in LanceDB, windows from DuckDB) and working-memory update
throughput. Peers in the same run: a plain LanceDB vector search (same filter, no windows, no
dedupe) and a brute-force numpy scan of the same vectors.

    .venv/bin/python benchmarks/memory.py [--messages 100000] [--queries 200]

Target: recall p50 < 20 ms. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from fm_lab.memory import HashingEmbedder, Memory, Recall, WorkingMemory
from fm_lab.memory.history import StoredMessage
from fm_lab.store import Store


def words(rng: random.Random, n: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "zu", "gri"]
    return ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(n)]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(name: str, samples_ms: list[float]) -> None:
    print(f"  {name:<48} p50 {pct(samples_ms, 50):7.2f} ms   p95 {pct(samples_ms, 95):7.2f} ms"
          f"   mean {statistics.fmean(samples_ms):7.2f} ms")


def load(memory: Memory, store: Store, n_messages: int, rng: random.Random,
         threads_per_resource: int = 10, per_thread: int = 100) -> dict[str, list[str]]:
    vocab = words(rng, 3000)
    n_threads = max(1, n_messages // per_thread)
    layout: dict[str, list[str]] = {}
    batch: list[StoredMessage] = []
    started = time.perf_counter()
    with store.hold():
        for t in range(n_threads):
            resource = f"user-{t // threads_per_resource}"
            thread = f"{resource}/thread-{t % threads_per_resource}"
            layout.setdefault(resource, []).append(thread)
            msgs = [{"role": "user" if i % 2 == 0 else "assistant",
                     "content": " ".join(rng.choice(vocab) for _ in range(12))}
                    for i in range(per_thread)]
            batch.extend(memory.history.append(thread, resource, [(f"{thread}#{i}", m)
                                                                  for i, m in enumerate(msgs)]))
            if len(batch) >= 20_000:
                memory.vectors.add(batch, memory.embedder.embed([s.text for s in batch]))
                batch = []
    if batch:
        memory.vectors.add(batch, memory.embedder.embed([s.text for s in batch]))
    loaded = time.perf_counter() - started
    memory.vectors.optimize()
    print(f"loaded {n_threads * per_thread:,} messages in {n_threads:,} threads of "
          f"{len(layout):,} resources: {loaded:.1f} s (history + embedding + LanceDB); "
          f"optimize {time.perf_counter() - started - loaded:.1f} s")
    return layout


async def recall_latency(memory: Memory, store: Store, layout: dict[str, list[str]],
                         queries: int, rng: random.Random, per_thread: int) -> None:
    resources = sorted(layout)
    picks = []
    for _ in range(queries):
        resource = rng.choice(resources)
        thread = rng.choice(layout[resource])
        seq = rng.randint(1, per_thread - 25)
        text = memory.history.messages(thread, since=seq - 1, until=seq + 1)[0].text
        picks.append((resource, thread, " ".join(text.split()[:6])))
    live_from = per_thread - 19  # the last 20 messages are the live window

    async def timed(scope: str) -> list[float]:
        out = []
        for resource, thread, query in picks:
            t0 = time.perf_counter()
            found = await memory.recall(query, thread_id=thread, resource_id=resource,
                                        live_from=live_from, scope=scope)
            out.append((time.perf_counter() - t0) * 1000)
            assert found and all(s.thread_id in layout[resource] for s in found)
        return out

    print(f"\nrecall: top_k=3, message_range=2 (5 messages per hit), {queries} queries")
    for scope in ("thread", "resource"):
        report(f"fm_lab recall with windows, scope={scope}", await timed(scope))

    full = []
    for resource, thread, query in picks:
        t0 = time.perf_counter()
        await memory.prepare(thread_id=thread, resource_id=resource, query=query)
        full.append((time.perf_counter() - t0) * 1000)
    report("fm_lab prepare (DuckDB last 20 + recall, resource)", full)

    # peer 1: plain LanceDB search, same filter, no windows, no dedupe
    table = memory.vectors.table
    plain = []
    for resource, _thread, query in picks:
        t0 = time.perf_counter()
        vec = memory.embedder.embed([query])[0]
        table.search(vec, vector_column_name="vector").distance_type("cosine").where(
            f"resource_id = '{resource}'", prefilter=True).select(
            ["thread_id", "sequence", "_distance"]).limit(3).to_arrow()
        plain.append((time.perf_counter() - t0) * 1000)
    report("peer: plain LanceDB search (resource filter, no windows)", plain)

    # peer 2: brute-force numpy scan over every vector in RAM (filter by mask)
    data = table.search().select(["resource_id", "vector"]).limit(table.count_rows()).to_arrow()
    matrix = np.asarray(data.column("vector").combine_chunks().flatten(), np.float32).reshape(
        -1, memory.embedder.dim)
    owners = np.asarray(data.column("resource_id").to_pylist())
    brute = []
    for resource, _thread, query in picks:
        t0 = time.perf_counter()
        vec = memory.embedder.embed([query])[0]
        scores = matrix @ vec
        scores[owners != resource] = -np.inf
        np.argpartition(-scores, 3)[:3]
        brute.append((time.perf_counter() - t0) * 1000)
    report(f"peer: numpy brute force over {len(matrix):,} vectors in RAM", brute)


async def working_throughput(store: Store, n: int) -> None:
    wm = WorkingMemory(scope="resource", template="# Facts\n", store=store)
    t0 = time.perf_counter()
    for i in range(n):
        await wm.update("bench-seq", f"fact {i}")
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    await asyncio.gather(*(wm.update("bench-conc", f"fact {i % (n // 2)}") for i in range(n)))
    conc = time.perf_counter() - t0
    lines = [x for x in wm.get("bench-conc").splitlines()[1:] if x]
    print(f"\nworking memory: {n} sequential updates {n / seq:,.0f}/s "
          f"({seq / n * 1000:.1f} ms each); {n} concurrent (half duplicates) {n / conc:,.0f}/s; "
          f"{len(lines)} distinct lines kept (expected {n // 2})")
    with store.hold():
        t0 = time.perf_counter()
        for i in range(n):
            await wm.update("bench-held", f"fact {i}")
        held = time.perf_counter() - t0
    print(f"  with store.hold(): {n / held:,.0f} updates/s ({held / n * 1000:.2f} ms each)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        memory = Memory(store=store, last_messages=20,
                        recall=Recall(top_k=3, message_range=2, scope="resource"),
                        embedder=HashingEmbedder(256))
        layout = load(memory, store, args.messages, rng)
        await recall_latency(memory, store, layout, args.queries, rng, per_thread=100)
        await working_throughput(store, args.updates)


if __name__ == "__main__":
    asyncio.run(main())
