"""The exact command ``make demo`` runs (read from the Makefile), as a real ``fm-lab``
process: the run's table, outputs, trace, model usage and the waterfall PNG."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _demo_arguments() -> list[str]:
    """The fm-lab arguments of the Makefile's demo recipe (continuation lines joined)."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^demo:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe is not None, "no demo target in the Makefile"
    words = shlex.split(recipe.group(1))
    assert words[0] == "$(BIN)/fm-lab", words
    return words[1:]


def test_the_make_demo_command_prints_the_run_trace_usage_and_writes_the_plot(tmp_path):
    args = _demo_arguments()
    assert args[0] == "run" and "--trace" in args and "--plot" in args
    shutil.copytree(ROOT / "examples", tmp_path / "examples")  # its paths are relative
    out = subprocess.run([sys.executable, "-m", "fm_lab", *args], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    head, rest = text.split("\nnodes:\n", 1)
    assert re.fullmatch(r"run \S+ of review_triage: succeeded \(policy: trusted\)\n", head), head
    nodes, rest = rest.split("\noutputs:\n", 1)
    statuses = {row.split()[0]: row.split()[2] for row in nodes.strip().splitlines()[1:]}
    assert statuses["assist"] == "succeeded" and statuses["auto_reply"] == "skipped"
    assert set(statuses.values()) == {"succeeded", "skipped"}
    outputs, rest = rest.split("\ntrace:\n", 1)
    triage = json.loads(outputs)["triage"]
    assert triage["summary"]["priority"] == "urgent"
    assert triage["next_step"].startswith("Call Ada back (next business day)")
    trace, usage = rest.split("\nusage:\n", 1)
    kinds = {row.split()[0] for row in trace.strip().splitlines()[1:]}
    assert kinds == {"workflow", "node", "llm", "agent", "tool"}
    calls = {row.split()[0]: int(row.split()[1])
             for row in usage.split("\n\n", 1)[0].strip().splitlines()[1:]}
    assert calls == {"offline/demo-support": 2, "offline/demo-policy": 1, "offline/echo": 1}
    plot = args[args.index("--plot") + 1]
    assert f"waterfall written to {plot}" in text
    png = (tmp_path / plot).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
