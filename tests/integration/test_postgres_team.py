"""A PostgreSQL store shared by many processes: eight write 200 runs each at once, nothing is
lost and nobody waits for a file; a process killed mid-run leaves its run to any other process,
which resumes it without redoing committed work."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import fm_lab
from fm_lab.store import open_store

pytestmark = pytest.mark.slow

WRITER = """
import json, sys, time
from pathlib import Path
import fm_lab

url, go, count, tag = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
store = fm_lab.connect(url)
wf = {"id": "team_chain", "nodes": {
    "a": {"type": "template", "config": {"template": "{{ inputs.n }}"}},
    "b": {"type": "template", "config": {"template": "{{ nodes.a.output }}!"}}},
    "edges": ["a -> b"], "outputs": {"b": "{{ nodes.b.output }}"}}
fm_lab.validate(wf)
while not go.exists():  # every writer starts at once
    time.sleep(0.005)
statuses = {}
for i in range(count):
    run = fm_lab.run(wf, {"n": f"{tag}-{i}"}, store=store, progress=False)
    statuses[run.status] = statuses.get(run.status, 0) + 1
print(json.dumps(statuses))
"""

FUNCTIONS = """
import time
from pathlib import Path


def step(name, log):
    with open(log, "a") as fh:
        fh.write(name + "\\n")
    return name


def hang_once(name, log, marker):
    flag = Path(marker)
    if not flag.exists():
        partial = flag.with_name(flag.name + ".partial")
        partial.write_text("reached")
        partial.replace(flag)
        time.sleep(120)
    return step(name, log)
"""

RUNNER = """
import sys
import fm_lab

url, wf_path, run_id = sys.argv[1:]
fm_lab.run(fm_lab.Workflow.from_file(wf_path), store=fm_lab.connect(url), run_id=run_id)
"""


def test_eight_processes_write_200_runs_each_into_one_store_at_once(
        spawner: Any, pg_url: str, tmp_path: Path) -> None:
    processes, each = 8, 200
    go = tmp_path / "go"
    procs = [spawner.start(WRITER, pg_url, str(go), str(each), f"p{i}")
             for i in range(processes)]
    time.sleep(0.5)  # most have imported fm_lab and opened the store by now; none waits long
    go.write_text("go")
    results = [json.loads(spawner.finish(p, timeout=600)) for p in procs]
    assert results == [{"succeeded": each}] * processes

    store = open_store(pg_url)
    totals = fm_lab.sql(
        "select (select count(*) from runs) as runs, "
        "(select count(*) from runs where status = 'succeeded') as succeeded, "
        "(select count(distinct inputs) from runs) as distinct_inputs, "
        "(select count(*) from node_executions) as nodes, "
        "(select count(*) from spans) as spans, "
        "(select count(*) from spans where kind = 'workflow') as run_spans, "
        "(select count(*) from workflows) as versions", store=store)
    assert totals.to_dict("records") == [{
        "runs": 1600, "succeeded": 1600, "distinct_inputs": 1600, "nodes": 3200,
        "spans": 1600 * 3, "run_spans": 1600, "versions": 1}]
    outputs = fm_lab.sql("select outputs from runs where inputs = ?",
                         [json.dumps({"n": "p3-199"}, separators=(",", ":"))], store=store)
    assert [json.loads(o) for o in outputs["outputs"]] == [{"b": "p3-199!"}]
    store.close()


def _diamond(module: str, log: Path, marker: Path) -> fm_lab.Workflow:
    builder = fm_lab.WorkflowBuilder("pg_crash", outputs={"d": "{{ nodes.d.output }}"})
    a = builder.node("a", "code", function=f"{module}:step", args={"name": "a", "log": str(log)})
    b = builder.node("b", "code", function=f"{module}:step", args={"name": "b", "log": str(log)})
    c = builder.node("c", "code", function=f"{module}:hang_once",
                     args={"name": "c", "log": str(log), "marker": str(marker)})
    d = builder.node("d", "code", function=f"{module}:step", args={"name": "d", "log": str(log)})
    a >> [b, c]
    c >> d
    return builder.build()


def test_a_killed_processes_run_is_recovered_by_another_process(
        spawner: Any, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a team store runs restricted: the team allows its own module (every process here)
    monkeypatch.setenv("FM_LAB_ALLOW", "pg_crash_fns_*")
    log, marker = tmp_path / "effects.log", tmp_path / "c.reached"
    module = spawner.write_module("pg_crash_fns", FUNCTIONS)
    wf_path = tmp_path / "diamond.flow.json"
    wf_path.write_text(_diamond(module, log, marker).to_json())
    run_id = f"crash-{uuid.uuid4().hex[:8]}"
    proc = spawner.start(RUNNER, pg_url, str(wf_path), run_id)
    spawner.wait_for(marker, proc)

    store = open_store(pg_url)
    assert store.run_is_live(run_id)  # its process holds the run
    assert fm_lab.recover(store) == []  # and nobody takes a live run away from it
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert sorted(log.read_text().split()) == ["a", "b"]  # committed before the kill

    deadline = time.monotonic() + 30  # the server ends the dead session (a hang guard)
    while store.run_is_live(run_id):
        assert time.monotonic() < deadline, "the killed process still holds its run"
        time.sleep(0.05)
    assert store.run_status(run_id) == "running"  # as the dead process left it
    (resumed,) = fm_lab.recover(store)
    assert (resumed.run_id, resumed.status) == (run_id, "succeeded"), resumed.error
    assert resumed.outputs == {"d": "d"}
    assert sorted(log.read_text().split()) == ["a", "b", "c", "d"]  # a and b ran once
    assert fm_lab.recover(store) == []
    assert store.runs().set_index("run_id").loc[run_id, "policy"] == "restricted"
    store.close()
