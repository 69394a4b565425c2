"""Two processes on one DuckDB file: sharing between short writes, a clear error when held."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import fm_lab

pytestmark = pytest.mark.slow

FUNCTIONS = """
import time
from pathlib import Path


def wait_for_release(marker, release, value):
    # announce we are running, then wait (bounded) until the test lets us finish
    Path(marker).write_text("running")
    deadline = time.monotonic() + 30
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def die_once(marker):
    # the first attempt kills its own process (SIGKILL), as a crashed kernel would
    import os, signal
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"
"""

RUNNER = """
import sys

import fm_lab

path, wf_path, run_id = sys.argv[1:]
run = fm_lab.run(fm_lab.Workflow.from_file(wf_path), store=fm_lab.Store(path), run_id=run_id)
print(run.status)
"""

HOLDER = """
import sys
import time
from pathlib import Path

import fm_lab

path, marker, release, *go = sys.argv[1:]
while go and not Path(go[0]).exists():  # optionally wait for a signal before holding
    time.sleep(0.01)
store = fm_lab.Store(path)
with store.hold():
    store.runs()
    Path(marker).write_text("holding")
    deadline = time.monotonic() + 30
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
print("released")
"""


def _row(store: fm_lab.Store, run_id: str):
    """The run's row; a live run of another process shows once it has run for a moment."""
    deadline = time.monotonic() + 5
    while True:
        runs = store.runs().set_index("run_id")
        if run_id in runs.index or time.monotonic() > deadline:
            return runs.loc[run_id]
        time.sleep(0.05)


def _status(store: fm_lab.Store, run_id: str) -> str:
    return _row(store, run_id)["status"]


def test_two_processes_share_one_file(spawner, tmp_path, store_path):
    marker, release = tmp_path / "slow.running", tmp_path / "slow.release"
    module = spawner.write_module("two_proc_fns", FUNCTIONS)
    b = fm_lab.WorkflowBuilder("other_process")
    first = b.node("first", "template", template="from the subprocess")
    slow = b.node(
        "slow",
        "code",
        function=f"{module}:wait_for_release",
        args={"marker": str(marker), "release": str(release), "value": 42},
    )
    first >> slow
    wf_path = tmp_path / "slow.flow.json"
    wf_path.write_text(b.build().to_json())
    proc = spawner.start(RUNNER, str(store_path), str(wf_path), "sub-run")
    spawner.wait_for(marker, proc)

    # While the subprocess is in the middle of its run, this process reads and writes the file.
    store = fm_lab.Store(store_path)
    assert _status(store, "sub-run") == "running"
    mine = fm_lab.WorkflowBuilder("this_process")
    mine.node("hello", "template", template="hello {{ inputs.who }}")
    run = fm_lab.run(mine.build(), inputs={"who": "neighbour"}, store=store)
    assert run.status == "succeeded", run.error
    assert run.outputs == {"hello": "hello neighbour"}
    assert proc.poll() is None, "the subprocess should still be running its slow node"
    assert _status(store, "sub-run") == "running"

    release.touch()
    assert spawner.finish(proc).strip() == "succeeded"

    fresh = fm_lab.Store(store_path)
    runs = fresh.runs().set_index("run_id")
    assert runs.loc["sub-run", "status"] == "succeeded"
    assert runs.loc[run.run_id, "status"] == "succeeded"
    assert fm_lab.get_run("sub-run", store=fresh).outputs == {"slow": 42}
    assert fm_lab.get_run(run.run_id, store=fresh).outputs == {"hello": "hello neighbour"}
    assert not list(fresh.journal_dir.glob("*.journal"))


def test_held_file_raises_store_locked_error_naming_the_file(spawner, tmp_path, store_path):
    marker, release = tmp_path / "held", tmp_path / "release"
    proc = spawner.start(HOLDER, str(store_path), str(marker), str(release))
    spawner.wait_for(marker, proc)

    with pytest.raises(fm_lab.StoreLockedError) as caught:
        fm_lab.Store(store_path, lock_timeout_s=0.5).runs()

    assert str(Path(store_path).resolve()) in str(caught.value)
    assert caught.value.path == str(Path(store_path).resolve())
    assert str(proc.pid) in str(caught.value)  # the holder is named too
    assert proc.poll() is None and not release.exists()  # it failed while the file was held

    release.touch()
    assert spawner.finish(proc).strip() == "released"
    # once released, the file is usable again
    assert fm_lab.Store(store_path, lock_timeout_s=0.5).runs().empty


def test_waiter_gets_the_file_once_the_holder_lets_go(spawner, tmp_path, store_path):
    """A short hold is waited out (lock_timeout_s), not reported as an error."""
    marker, release = tmp_path / "held", tmp_path / "release"
    proc = spawner.start(HOLDER, str(store_path), str(marker), str(release))
    spawner.wait_for(marker, proc)

    store = fm_lab.Store(store_path, lock_timeout_s=20)
    timer = threading.Timer(0.3, release.touch)
    timer.start()
    try:
        assert store.runs().empty  # starts while held, waits for the release
    finally:
        timer.cancel()
    assert release.exists()  # the read got the file only after the holder was told to let go
    assert spawner.finish(proc).strip() == "released"


def test_resume_of_a_run_live_in_another_process_is_refused_without_side_effects(
    spawner, tmp_path, store_path
):
    """resume() must not take over a run its owner is still executing: it raises, and the run
    row (status, owner) is left to the live owner."""
    from fm_lab.store import RunLockedError

    marker, release = tmp_path / "slow.running", tmp_path / "slow.release"
    module = spawner.write_module("live_fns", FUNCTIONS)
    b = fm_lab.WorkflowBuilder("live_elsewhere")
    b.node(
        "slow",
        "code",
        function=f"{module}:wait_for_release",
        args={"marker": str(marker), "release": str(release), "value": 7},
    )
    wf_path = tmp_path / "live.flow.json"
    wf_path.write_text(b.build().to_json())
    proc = spawner.start(RUNNER, str(store_path), str(wf_path), "live-run")
    spawner.wait_for(marker, proc)
    store = fm_lab.Store(store_path)
    assert _row(store, "live-run")["owner_pid"] == proc.pid

    with pytest.raises(RunLockedError, match="live-run"):
        fm_lab.resume("live-run", store=store, wait_s=0.5)

    row = store.runs().set_index("run_id").loc["live-run"]
    assert row["status"] == "running"
    assert row["owner_pid"] == proc.pid  # still the live owner, not this process
    release.touch()
    assert spawner.finish(proc).strip() == "succeeded"
    row = fm_lab.Store(store_path).runs().set_index("run_id").loc["live-run"]
    assert row["status"] == "succeeded"
    assert row["owner_pid"] == proc.pid


def test_run_survives_its_file_being_held_during_a_periodic_ingest(
    spawner, tmp_path, store_path, register, monkeypatch
):
    """The journal is the checkpoint: a batch ingest that finds the file held by another
    process is deferred, not turned into a failed run."""
    monkeypatch.setattr("fm_lab.tracing.recorder.INGEST_EVERY_S", 0.0)  # ingest at every tick
    monkeypatch.setattr("fm_lab.tracing.recorder.INGEST_FIRST_S", 0.0)
    go, held, release = tmp_path / "go", tmp_path / "held", tmp_path / "release"
    store = fm_lab.Store(store_path, lock_timeout_s=0.3)
    store.runs()  # create the file before the holder opens it
    proc = spawner.start(HOLDER, str(store_path), str(held), str(release), str(go))

    def grab() -> str:
        go.touch()
        spawner.wait_for(held, proc)
        return "held elsewhere"

    def let_go() -> str:
        release.touch()
        proc.wait(timeout=30)
        return "released"

    b = fm_lab.WorkflowBuilder("held_mid_run")
    first = b.node("grab", "code", function=register(grab))
    second = b.node("let_go", "code", function=register(let_go))
    end = b.node("end", "template", template="{{ nodes.let_go.output }}")
    first >> second
    second >> end

    run = fm_lab.run(b.build(), store=store)

    assert run.status == "succeeded", run.error
    assert run.outputs == {"end": "released"}
    fresh = fm_lab.Store(store_path)
    assert fresh.runs().set_index("run_id").loc[run.run_id, "status"] == "succeeded"
    assert set(fresh.node_executions(run.run_id)["status"]) == {"succeeded"}


def test_recover_resumes_dead_runs_and_leaves_live_ones_alone(spawner, tmp_path, store_path):
    module = spawner.write_module("recover_fns", FUNCTIONS)
    marker, release, died = tmp_path / "live.running", tmp_path / "live.release", tmp_path / "d"
    live = fm_lab.WorkflowBuilder("live_one")
    live.node("slow", "code", function=f"{module}:wait_for_release",
              args={"marker": str(marker), "release": str(release), "value": 1})
    dead = fm_lab.WorkflowBuilder("dead_one")
    dead.node("die", "code", function=f"{module}:die_once", args={"marker": str(died)})
    for name, builder in (("live", live), ("dead", dead)):
        (tmp_path / f"{name}.flow.json").write_text(builder.build().to_json())
    crashed = spawner.start(RUNNER, str(store_path), str(tmp_path / "dead.flow.json"), "dead-run")
    crashed.communicate(timeout=120)
    assert crashed.returncode == -9 and died.exists()
    proc = spawner.start(RUNNER, str(store_path), str(tmp_path / "live.flow.json"), "live-run")
    spawner.wait_for(marker, proc)
    store = fm_lab.Store(store_path)
    assert _row(store, "live-run")["status"] == "running"

    recovered = fm_lab.recover(store=store)
    assert [(r.run_id, r.status) for r in recovered] == [("dead-run", "succeeded")]
    assert fm_lab.get_run("dead-run", store=store).node("die").output == "survived"
    row = _row(store, "live-run")
    assert row["status"] == "running" and row["owner_pid"] == proc.pid  # left to its owner
    release.touch()
    assert spawner.finish(proc).strip() == "succeeded"
    assert store.run_status("live-run") == "succeeded"
