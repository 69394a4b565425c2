"""Evals: a 10,000-row experiment with three code scorers against a plain pandas loop that
calls the same target and scorers, in the same run.

1. ``pandas loop``: for each row of the dataset's DataFrame, call the target, then each
   scorer, and collect the scores in a DataFrame: the work itself, nothing recorded.
2. ``fm_lab.evals.run``: the same target and scorers (concurrency 1 and 8) on a fresh DuckDB
   file store: each row a traced run (a row span, the target's span, a span per scorer call),
   rows and scores stored as they finish (resumable), then the experiment read back as a
   DataFrame.

Per-row overhead = (run's wall time - loop's wall time) / rows; throughput in rows/s.

Usage::

    .venv/bin/python benchmarks/evals.py            # 10,000 rows
    .venv/bin/python benchmarks/evals.py --rows 2000
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pandas as pd

import fm_lab
import fm_lab.evals as ev

PATTERN = re.compile(r"^\d+$")


def target(question: str, n: int) -> str:
    return str(n * 2) if n % 7 else f"about {n * 2}"


def exact(output: str, expected: str) -> bool:
    return output == expected


def digits(output: str) -> bool:
    return PATTERN.match(output) is not None


def length(output: str) -> float:
    return min(len(output) / 10, 1.0)


def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"question": [f"double {i}" for i in range(rows)],
                         "n": list(range(rows)),
                         "expected": [str(i * 2) for i in range(rows)]})


def pandas_loop(data: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    started = time.perf_counter()
    out = []
    for row in data.itertuples(index=False):
        output = target(row.question, row.n)
        out.append({"output": output, "exact": exact(output, row.expected),
                    "digits": digits(output), "length": length(output)})
    result = pd.DataFrame(out)
    return time.perf_counter() - started, result


def experiment(data: pd.DataFrame, folder: Path, concurrency: int) -> tuple[float, pd.DataFrame]:
    store = fm_lab.connect(str(folder / f"evals-{concurrency}.duckdb"))
    dataset = ev.dataset("bench", data, store=store)
    scorers = [ev.scorer(exact), ev.scorer(digits), ev.scorer(length)]
    started = time.perf_counter()
    exp = ev.run(target, dataset, scorers, concurrency=concurrency, store=store)
    result = exp.df
    took = time.perf_counter() - started
    store.close()
    return took, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    logging.getLogger("fm_lab").setLevel(logging.ERROR)
    data = frame(args.rows)
    with tempfile.TemporaryDirectory() as folder:  # imports and first-use costs, not timed
        experiment(frame(50), Path(folder), 1)
    loop_s, loop = pandas_loop(data)
    print(f"{args.rows:,} rows, 3 code scorers")
    print(f"  pandas loop            {loop_s:8.3f} s  {args.rows / loop_s:12,.0f} rows/s")
    with tempfile.TemporaryDirectory() as folder:
        for concurrency in (1, 8):
            took, result = experiment(data, Path(folder), concurrency)
            assert len(result) == args.rows
            assert result["exact"].mean() == loop["exact"].mean()  # the same work
            overhead_us = (took - loop_s) / args.rows * 1e6
            print(f"  evals.run (conc. {concurrency})  {took:8.3f} s  "
                  f"{args.rows / took:12,.0f} rows/s  {took / loop_s:6.0f}x the loop, "
                  f"{overhead_us:,.0f} us/row for tracing, storing and resumability")


if __name__ == "__main__":
    main()
