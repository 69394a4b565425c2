"""An experiment whose process is SIGKILLed midway is resumed by its id and runs only the
rows it had not stored; the killed process's spans are kept too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

import fm_lab
import fm_lab.evals as ev

SCRIPT = """
import os, signal, sys
import pandas as pd
import fm_lab, fm_lab.evals as ev
import fm_lab.evals.runner as runner

runner.FLUSH_ROWS = 10  # store rows in groups of ten (and every second)
store = fm_lab.connect(sys.argv[1])
data = ev.dataset("killed", pd.DataFrame({"x": range(40)}), expected=None, store=store)

def target(x):
    if x == 25:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 2

ev.run(target, data, [ev.scorer(lambda output: output % 2 == 0, name="even")],
       experiment_id="x-killed", concurrency=1, store=store)
"""


def test_a_killed_experiment_resumed_runs_only_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "killed.duckdb"
    script = tmp_path / "experiment.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(path)], capture_output=True,
                          timeout=120)
    assert done.returncode == -9, done.stderr.decode()
    store = fm_lab.connect(str(path))
    try:
        before = ev.load_experiment("x-killed", store=store)
        stored = set(before.df["position"])
        assert before.status == "running"
        assert set(range(20)) <= stored <= set(range(25))  # whole groups, none past the kill
        calls: list[int] = []

        def target(x: int) -> int:
            calls.append(x)
            return x * 2

        data = ev.dataset("killed", pd.DataFrame({"x": range(40)}), expected=None, store=store)
        exp = ev.run(target, data, [ev.scorer(lambda output: output % 2 == 0, name="even")],
                     experiment_id="x-killed", store=store)
        assert sorted(calls) == sorted(set(range(40)) - stored)
        assert len(exp.df) == 40 and exp.df["position"].is_unique
        assert exp.df["even"].eq(1.0).all() and exp.status == "finished"
        # the killed process's row spans were made durable with its rows and ingested later
        spans = fm_lab.traces(kind="eval", store=store)
        assert set(before.df["span_id"]) <= set(spans["span_id"])
    finally:
        store.close()
