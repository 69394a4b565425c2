"""A run killed with SIGKILL mid-node is recovered from its journal and resumed without re-running
committed nodes."""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from pathlib import Path

import pytest

import fm_lab
from fm_lab.store.errors import StoreError
from fm_lab.store.journal import read_journal

pytestmark = pytest.mark.slow

FUNCTIONS = """
import time
from pathlib import Path


def announce(flag):
    # written whole, then renamed: the test kills us once the file exists, and a file made
    # by write_text exists (empty) before its text is in it
    partial = flag.with_name(flag.name + ".partial")
    partial.write_text("reached")
    partial.replace(flag)


def step(name, add, log, inputs):
    total = add + sum(inputs.values())
    with open(log, "a") as fh:
        fh.write(name + "\\n")
    return total


def slow_step(name, add, log, marker, inputs):
    # First run: announce we got here, then hang (the test kills us meanwhile). The side
    # effect comes after the sleep, so a killed attempt leaves none.
    flag = Path(marker)
    if not flag.exists():
        announce(flag)
        time.sleep(120)
    return step(name, add, log, inputs)


def slow_double(count, log, marker):
    flag = Path(marker)
    if not flag.exists():
        announce(flag)
        time.sleep(120)
    with open(log, "a") as fh:
        fh.write("big\\n")
    return count * 2
"""

RUNNER = """
import sys

import fm_lab

path, wf_path, run_id = sys.argv[1:]
run = fm_lab.run(fm_lab.Workflow.from_file(wf_path), store=fm_lab.Store(path), run_id=run_id)
print("finished", run.status, run.error)
"""

NODES = ["a", "b", "c", "d", "e"]
# a=1; b=a+10; c=a+100; d=b+c+1000; e=d+10000
EXPECTED = {"total": 11112, "b": 11, "c": 101}


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _diamond(module: str, log: Path, marker: Path) -> fm_lab.Workflow:
    """a -> (b, c) -> d (slow) -> e."""
    b = fm_lab.WorkflowBuilder(
        "crash_diamond",
        outputs={
            "total": "{{ nodes.e.output }}",
            "b": "{{ nodes.b.output }}",
            "c": "{{ nodes.c.output }}",
        },
    )
    common = {"log": str(log)}
    a = b.node("a", "code", function=f"{module}:step", args={"name": "a", "add": 1, **common})
    nb = b.node("b", "code", function=f"{module}:step", args={"name": "b", "add": 10, **common})
    nc = b.node("c", "code", function=f"{module}:step", args={"name": "c", "add": 100, **common})
    d = b.node(
        "d",
        "code",
        function=f"{module}:slow_step",
        args={"name": "d", "add": 1000, "marker": str(marker), **common},
    )
    e = b.node("e", "code", function=f"{module}:step", args={"name": "e", "add": 10000, **common})
    a >> [nb, nc]
    nb >> d
    nc >> d
    d >> e
    return b.build()


def _journal(store_path: Path, run_id: str) -> Path:
    return Path(f"{store_path}.journal") / f"{run_id}.journal"


def _killed_run(spawner, tmp_path: Path, store_path: Path) -> tuple[str, Path, Path]:
    """Start the diamond in a subprocess, SIGKILL it while ``d`` sleeps; return
    (run_id, side-effect log, marker)."""
    log, marker = tmp_path / "effects.log", tmp_path / "d.reached"
    module = spawner.write_module("crash_fns", FUNCTIONS)
    wf_path = tmp_path / "diamond.flow.json"
    wf_path.write_text(_diamond(module, log, marker).to_json())
    run_id = f"crash-{uuid.uuid4().hex[:8]}"
    proc = spawner.start(RUNNER, str(store_path), str(wf_path), run_id)
    spawner.wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # a, b and c committed before d started; the killed d left no side effect.
    assert sorted(_lines(log)) == ["a", "b", "c"]
    assert _journal(store_path, run_id).exists()
    return run_id, log, marker


def _assert_resumed(run: fm_lab.Run, store_path: Path) -> None:
    assert run.status == "succeeded", run.error
    assert run.outputs == EXPECTED
    assert [run.node(n).status for n in NODES] == ["succeeded"] * 5
    assert run.node("d").output == 1112
    fresh = fm_lab.Store(store_path)
    runs = fresh.runs()
    assert runs.set_index("run_id").loc[run.run_id, "status"] == "succeeded"
    assert fm_lab.get_run(run.run_id, store=fresh).outputs == EXPECTED


def test_killed_run_resumes_without_rerunning_committed_nodes(spawner, tmp_path, store_path):
    run_id, log, marker = _killed_run(spawner, tmp_path, store_path)

    # Opening the file store ingests the dead process's journal; the run row is still running.
    store = fm_lab.Store(store_path)
    runs = store.runs()
    assert run_id in set(runs["run_id"])
    assert runs.set_index("run_id").loc[run_id, "status"] == "running"
    nodes = store.node_executions(run_id).set_index("node_id")
    assert sorted(nodes.index) == ["a", "b", "c"]
    assert set(nodes["status"]) == {"succeeded"}
    assert not _journal(store_path, run_id).exists()

    run = fm_lab.resume(run_id, store=store)

    _assert_resumed(run, store_path)
    # Every node's side effect happened exactly once: committed nodes were not re-run and the
    # killed node ran once in total.
    assert Counter(_lines(log)) == dict.fromkeys(NODES, 1)
    history = store.node_executions(run_id, history=True)
    assert Counter(history["node_id"]) == dict.fromkeys(NODES, 1)
    assert marker.read_text() == "reached"


def test_resume_alone_recovers_the_dead_journal(spawner, tmp_path, store_path):
    """resume() itself ingests the leftover journal (no earlier Store(path) did it)."""
    run_id, log, _ = _killed_run(spawner, tmp_path, store_path)
    # the run lived only in its journal (a short run writes DuckDB once, at its end), and a
    # read-only store recovers nothing
    assert _journal(store_path, run_id).exists()
    with pytest.raises(StoreError, match="no fm_lab store"):
        fm_lab.Store(store_path, read_only=True).runs()

    run = fm_lab.resume(run_id, store=fm_lab.Store(store_path))

    _assert_resumed(run, store_path)
    assert Counter(_lines(log)) == dict.fromkeys(NODES, 1)


def test_torn_last_journal_line_is_ignored(spawner, tmp_path, store_path):
    run_id, log, _ = _killed_run(spawner, tmp_path, store_path)
    journal = _journal(store_path, run_id)
    intact = [r for r in read_journal(journal) if r["k"] == "node"]
    assert sorted(r["node"] for r in intact) == ["a", "b", "c"]
    with journal.open("ab") as fh:  # a crash in the middle of writing the next record
        fh.write(b'0badf00d {"k":"node","node":"d","status":"succeeded","output":99')

    store = fm_lab.Store(store_path)

    nodes = store.node_executions(run_id).set_index("node_id")
    assert sorted(nodes.index) == ["a", "b", "c"]
    assert set(nodes["status"]) == {"succeeded"}
    assert store.runs().set_index("run_id").loc[run_id, "status"] == "running"
    run = fm_lab.resume(run_id, store=store)
    _assert_resumed(run, store_path)
    assert Counter(_lines(log)) == dict.fromkeys(NODES, 1)


def test_truncated_last_record_is_not_committed(spawner, tmp_path, store_path):
    """A last record cut in half is dropped: its node counts as not committed and runs again,
    the records before it are kept."""
    run_id, log, _ = _killed_run(spawner, tmp_path, store_path)
    journal = _journal(store_path, run_id)
    records = [r for r in read_journal(journal) if r["k"] == "node"]
    data = journal.read_bytes()
    last_line = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    journal.write_bytes(data[: len(data) - len(last_line) // 2 - 1])
    lost = records[-1]["node"]
    kept = sorted(r["node"] for r in records[:-1])
    assert lost in ("b", "c")

    store = fm_lab.Store(store_path)

    assert sorted(store.node_executions(run_id)["node_id"]) == kept
    run = fm_lab.resume(run_id, store=store)
    _assert_resumed(run, store_path)
    expected = dict.fromkeys(NODES, 1)
    expected[lost] = 2  # its first execution was never committed
    assert Counter(_lines(log)) == expected


def test_state_and_skipped_paths_survive_a_crash(spawner, tmp_path, store_path):
    """State set and paths skipped before the kill are restored from the journal."""
    log, marker = tmp_path / "effects.log", tmp_path / "big.reached"
    module = spawner.write_module("crash_state_fns", FUNCTIONS)
    b = fm_lab.WorkflowBuilder(
        "crash_state",
        state={"type": "object", "properties": {"count": {"type": "integer", "default": 0}}},
    )
    start = b.node("start", "set_state", values={"count": 5})
    route = b.node(
        "route",
        "branch",
        routes=[{"handle": "big", "when": "{{ state.count > 3 }}"}],
        default="small",
    )
    big = b.node(
        "big",
        "code",
        function=f"{module}:slow_double",
        args={"count": "{{ state.count }}", "log": str(log), "marker": str(marker)},
    )
    small = b.node("small", "template", template="small")
    join = b.node("join", "merge", mode="first")
    end = b.node("end", "set_state", values={"count": "{{ state.count + nodes.join.output }}"})
    start >> route
    route.route("big") >> big
    route.route("small") >> small
    big >> join
    small >> join
    join >> end
    wf_path = tmp_path / "state.flow.json"
    wf_path.write_text(b.build().to_json())
    proc = spawner.start(RUNNER, str(store_path), str(wf_path), "crash-state")
    spawner.wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)

    store = fm_lab.Store(store_path)
    nodes = store.node_executions("crash-state").set_index("node_id")["status"].to_dict()
    # the skip of `small` is derived, so it may or may not have been committed before the kill
    assert {n: s for n, s in nodes.items() if n != "small"} == {
        "start": "succeeded",
        "route": "succeeded",
    }
    assert nodes.get("small", "skipped") == "skipped"

    run = fm_lab.resume("crash-state", store=store)

    assert run.status == "succeeded", run.error
    assert run.node("big").output == 10  # saw count=5 restored from the journal
    assert run.node("small").status == "skipped"
    assert run.node("join").output == 10
    assert run.state == {"count": 15}
    assert run.outputs == {"end": {"count": 15}}
    assert _lines(log) == ["big"]
    assert fm_lab.get_run("crash-state", store=fm_lab.Store(store_path)).state == {"count": 15}
    history = store.node_executions("crash-state", history=True)
    assert Counter(history["node_id"]) == dict.fromkeys(
        ["start", "route", "small", "big", "join", "end"], 1
    )
