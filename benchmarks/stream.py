"""What streaming a run's events costs, next to the same run without listeners (the peer).

One ``foreach`` node over N template items (concurrency 8) and an N-node chain, on an
in-memory store, run four ways, taking turns rep by rep: ``run`` (``fm_lab.run``, nobody
listens), ``on_event`` (``fm_lab.run`` with ``on_event=list.append``: the engine's dict
events), ``stream`` (``for e in fm_lab.stream(...)``: typed events, the run on its own thread,
consumed as they come) and ``stream_late`` (the same, consumed only after the run ended: a
consumer that falls behind; with ``max_buffered=1000`` the rest are counted as dropped).
Figures: median ms per node/item over ``--reps`` runs, and the events each consumer saw.

Usage::

    .venv/bin/python benchmarks/stream.py            # N = 2000, 5 reps
    .venv/bin/python benchmarks/stream.py --n 10000 --reps 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import fm_lab


def foreach(n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    wf = {"id": "bench_foreach", "nodes": {"loop": {"type": "foreach", "config": {
        "items": "{{ inputs.xs }}", "concurrency": 8,
        "node": {"type": "template", "config": {"template": "x"}}}}}}
    return wf, {"xs": list(range(n))}


def chain(n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    nodes = {f"n{i}": {"type": "template", "config": {"template": "x"}} for i in range(n)}
    edges = [f"n{i} -> n{i + 1}" for i in range(n - 1)]
    return {"id": "bench_chain", "nodes": nodes, "edges": edges}, {}


def ways(wf: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Callable[[], int]]:
    def plain() -> int:
        fm_lab.run(wf, inputs, store=fm_lab.Store(":memory:"), progress=False)
        return 0

    def listened() -> int:
        heard: list[dict[str, Any]] = []
        fm_lab.run(wf, inputs, store=fm_lab.Store(":memory:"), on_event=heard.append,
                   progress=False)
        return len(heard)

    def streamed() -> int:
        return sum(1 for _ in fm_lab.stream(wf, inputs, store=fm_lab.Store(":memory:")))

    def late() -> int:
        events = fm_lab.stream(wf, inputs, store=fm_lab.Store(":memory:"), max_buffered=1000)
        events.result()
        return sum(1 for _ in events)

    return {"run": plain, "on_event": listened, "stream": streamed, "stream_late": late}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    for name, make in (("foreach", foreach), ("chain", chain)):
        wf, inputs = make(args.n)
        runs = ways(wf, inputs)
        runs["run"]()  # warm up: imports, plan cache
        times: dict[str, list[float]] = {way: [] for way in runs}
        seen: dict[str, int] = {}
        for _ in range(args.reps):
            for way, fn in runs.items():
                start = time.perf_counter()
                seen[way] = fn()
                times[way].append((time.perf_counter() - start) * 1000 / args.n)
        base = statistics.median(times["run"])
        print(f"{name} N={args.n}")
        for way, values in times.items():
            median = statistics.median(values)
            print(f"  {way:<12} {median:8.4f} ms/{'item' if name == 'foreach' else 'node'}"
                  f"  x{median / base:5.2f}  events seen {seen[way]}")


if __name__ == "__main__":
    main()
