"""foreach on a real DuckDB file: bounded concurrency, item errors, sub-workflow bodies, a
SIGKILL in the middle of a loop, durable sleeps, cancellation and recover()."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

import fm_lab
from fm_lab.store.journal import read_journal

RUNNER = """
import sys

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

path, wf_path, run_id = sys.argv[1:]
run = fm_lab.run(fm_lab.Workflow.from_file(wf_path), store=fm_lab.Store(path), run_id=run_id)
print(run.status)
"""


def _journal(store_path: Path, run_id: str) -> Path:
    return Path(f"{store_path}.journal") / f"{run_id}.journal"


def _kill(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def _foreach(items, body: dict, **config) -> dict:
    return {
        "id": f"loop_{uuid.uuid4().hex[:6]}",
        "nodes": {"loop": {"type": "foreach", "config": {"items": items, **body, **config}}},
    }


# ---- concurrency ---------------------------------------------------------------------------
@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_concurrency_is_bounded_and_results_keep_item_order(store, register, concurrency):
    rng = random.Random(concurrency)
    delays = [rng.uniform(0.002, 0.02) for _ in range(24)]
    in_flight = {"now": 0, "max": 0}

    async def work(item: int) -> int:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        try:
            await asyncio.sleep(delays[item])
        finally:
            in_flight["now"] -= 1
        return item * item

    body = {
        "node": {
            "type": "code",
            "config": {"function": register(work), "args": {"item": "{{ item }}"}},
        }
    }
    wf = _foreach("{{ inputs.items }}", body, concurrency=concurrency)
    wf["inputs"] = {"type": "object", "properties": {"items": {"type": "array"}}}

    run = fm_lab.run(wf, {"items": list(range(24))}, store=store)

    assert run.status == "succeeded", run.error
    assert in_flight["now"] == 0
    assert in_flight["max"] <= concurrency
    if concurrency > 1:
        assert in_flight["max"] > 1
    output = run.node("loop").output
    assert output["results"] == [i * i for i in range(24)]
    assert (output["succeeded"], output["failed"], output["errors"]) == (24, 0, [])
    stored = store.node_executions(run.run_id).set_index("node_id")
    assert sorted(stored.index) == sorted(["loop", *(f"loop[{i}]" for i in range(24))])
    assert set(stored["status"]) == {"succeeded"}


# ---- item errors ---------------------------------------------------------------------------
def _picky(register) -> dict:
    def picky(item: int) -> int:
        if item % 3 == 1:
            raise ValueError(f"bad item {item}")
        return item * 10

    return {
        "node": {
            "type": "code",
            "config": {"function": register(picky), "args": {"item": "{{ item }}"}},
        }
    }


def test_item_error_fail_fails_the_node_and_the_run(store, register):
    wf = _foreach([0, 1, 2, 3], _picky(register), on_item_error="fail", concurrency=1)

    run = fm_lab.run(wf, store=store)

    assert run.status == "failed"
    assert run.error["node"] == "loop"
    assert "loop[1]" in run.error["message"]
    assert "bad item 1" in run.error["message"]
    node = run.node("loop")
    assert node.status == "failed"
    assert "loop[1]" in node.error["message"]
    items = store.node_executions(run.run_id).set_index("node_id")["status"].to_dict()
    assert items["loop[0]"] == "succeeded"
    assert items["loop[1]"] == "failed"
    assert "loop[3]" not in items  # with concurrency 1 nothing ran after the failure
    assert fm_lab.get_run(run.run_id, store=store).status == "failed"


def test_item_error_skip_leaves_failed_items_out(store, register):
    wf = _foreach([0, 1, 2, 3, 4], _picky(register), on_item_error="skip")

    run = fm_lab.run(wf, store=store)

    assert run.status == "succeeded", run.error
    output = run.node("loop").output
    assert output["results"] == [0, 20, 30]
    assert [e["index"] for e in output["errors"]] == [1, 4]
    assert "bad item 4" in output["errors"][1]["error"]
    assert (output["succeeded"], output["failed"]) == (3, 2)


def test_item_error_collect_keeps_none_and_lists_errors(store, register):
    wf = _foreach([0, 1, 2, 3, 4], _picky(register), on_item_error="collect")

    run = fm_lab.run(wf, store=store)

    assert run.status == "succeeded", run.error
    output = run.node("loop").output
    assert output["results"] == [0, None, 20, 30, None]
    assert [(e["index"], e["kind"]) for e in output["errors"]] == [(1, "user"), (4, "user")]
    assert "loop[1]" in output["errors"][0]["error"]
    assert "bad item 1" in output["errors"][0]["error"]
    assert (output["succeeded"], output["failed"]) == (3, 2)


# ---- sub-workflow bodies -------------------------------------------------------------------
def _sub_workflow_loop(register) -> dict:
    def double(x: int) -> int:
        return x * 2

    inner = {
        "id": "inner",
        "inputs": {
            "type": "object",
            "properties": {"item": {"type": "integer"}, "index": {"type": "integer"}},
        },
        "nodes": {
            "double": {
                "type": "code",
                "config": {"function": register(double), "args": {"x": "{{ inputs.item }}"}},
            },
            "describe": {
                "type": "template",
                "config": {
                    "template": "#{{ inputs.index }}: {{ inputs.item }}"
                    " -> {{ nodes.double.output }}"
                },
            },
        },
        "edges": ["double -> describe"],
        "outputs": {"value": "{{ nodes.double.output }}", "text": "{{ nodes.describe.output }}"},
    }
    return _foreach([5, 6, 7], {"workflow": inner}, concurrency=2)


def test_sub_workflow_body_records_inner_nodes_under_item_paths(store, register):
    run = fm_lab.run(_sub_workflow_loop(register), store=store)

    assert run.status == "succeeded", run.error
    assert run.node("loop").output["results"] == [
        {"value": 10, "text": "#0: 5 -> 10"},
        {"value": 12, "text": "#1: 6 -> 12"},
        {"value": 14, "text": "#2: 7 -> 14"},
    ]
    rows = store.node_executions(run.run_id).set_index("node_id")
    for i, item in enumerate([5, 6, 7]):
        assert rows.loc[f"loop[{i}]/double", "status"] == "succeeded"
        assert rows.loc[f"loop[{i}]/double", "node_type"] == "code"
        assert rows.loc[f"loop[{i}]/double", "output"] == str(item * 2)
        assert rows.loc[f"loop[{i}]/describe", "node_type"] == "template"
        assert rows.loc[f"loop[{i}]", "status"] == "succeeded"
    assert rows.loc["loop[1]/describe", "output"] == '"#1: 6 -> 12"'


def test_sub_workflow_body_rows_have_real_timings(store, register):
    """Every node_executions row, the sub-workflow item rows included, has the time it ran."""
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    run = fm_lab.run(_sub_workflow_loop(register), store=store)
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

    rows = store.node_executions(run.run_id).set_index("node_id")
    wrong = {
        node_id: (str(row["started_at"]), str(row["ended_at"]))
        for node_id, row in rows.iterrows()
        if not (before <= row["started_at"] <= row["ended_at"] <= after)
    }
    assert wrong == {}, f"rows timed outside the run: {wrong}"


# ---- a SIGKILL in the middle of a loop -----------------------------------------------------
LOOP_FUNCTIONS = """
import asyncio
import os
from pathlib import Path


async def item(index, log, marker, threshold):
    await asyncio.sleep(0.01)
    with open(log, "a") as fh:  # the side effect comes after the sleep
        fh.write(f"{index}\\n")
    if not os.path.exists(marker):
        with open(log) as fh:
            done = sum(1 for _ in fh)
        if done >= threshold:
            Path(marker).write_text(str(done))
    return index
"""

ITEMS = 200
CONCURRENCY = 4


@pytest.mark.slow
def test_killed_foreach_resumes_without_rerunning_committed_items(spawner, tmp_path, store_path):
    log, marker = tmp_path / "items.log", tmp_path / "half.done"
    module = spawner.write_module("loop_fns", LOOP_FUNCTIONS)
    wf = fm_lab.Workflow.from_dict(
        {
            "id": "killed_loop",
            "nodes": {
                "loop": {
                    "type": "foreach",
                    "config": {
                        "items": list(range(ITEMS)),
                        "concurrency": CONCURRENCY,
                        "node": {
                            "type": "code",
                            "config": {
                                "function": f"{module}:item",
                                "args": {
                                    "index": "{{ item }}",
                                    "log": str(log),
                                    "marker": str(marker),
                                    "threshold": ITEMS // 2,
                                },
                            },
                        },
                    },
                },
                "total": {
                    "type": "template",
                    "config": {"template": "{{ nodes.loop.output.results | sum }}"},
                },
            },
            "edges": ["loop -> total"],
        }
    )
    wf_path = tmp_path / "loop.flow.json"
    wf_path.write_text(wf.to_json())
    proc = spawner.start(RUNNER, str(store_path), str(wf_path), "killed-loop")
    spawner.wait_for(marker, proc)
    _kill(proc)

    done_before = [int(x) for x in log.read_text().split()]
    assert ITEMS // 2 <= len(done_before) < ITEMS, "the kill should land mid-loop"
    # the journal (read before any Store opens and ingests it) says what was committed
    records = read_journal(_journal(store_path, "killed-loop"))
    committed = {
        int(r["node"][len("loop[") : -1])
        for r in records
        if r["k"] == "node" and r["node"].startswith("loop[") and r["status"] == "succeeded"
    }
    assert len(committed) >= ITEMS // 2 - 2 * CONCURRENCY
    assert committed <= set(done_before)

    run = fm_lab.resume("killed-loop", store=fm_lab.Store(store_path))

    assert run.status == "succeeded", run.error
    assert run.node("loop").output["results"] == list(range(ITEMS))
    assert run.outputs == {"total": sum(range(ITEMS))}
    counts = Counter(int(x) for x in log.read_text().split())
    assert set(counts) == set(range(ITEMS))
    assert max(counts.values()) <= 2
    duplicated = sorted(i for i, n in counts.items() if n == 2)
    assert len(duplicated) <= 8, duplicated
    assert not set(duplicated) & committed, "a committed item ran again"
    assert all(counts[i] == 1 for i in committed)


# ---- durable sleep -------------------------------------------------------------------------
@pytest.mark.slow
def test_sleep_resumed_after_a_kill_sleeps_only_the_rest(spawner, tmp_path, store_path):
    wf = fm_lab.Workflow.from_dict(
        {
            "id": "nap",
            "nodes": {
                "nap": {"type": "sleep", "config": {"seconds": 3}},
                "after": {"type": "template", "config": {"template": "awake"}},
            },
            "edges": ["nap -> after"],
        }
    )
    wf_path = tmp_path / "nap.flow.json"
    wf_path.write_text(wf.to_json())
    proc = spawner.start(RUNNER, str(store_path), str(wf_path), "nap-run")
    journal = _journal(store_path, "nap-run")
    deadline = time.monotonic() + 120  # hang guards here are generous: a loaded machine
    started = None
    while started is None:
        steps = [r for r in read_journal(journal) if r["k"] == "step"]
        if steps:
            started = float(steps[0]["result"])
            assert steps[0]["name"] == "nap#sleep"
        else:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the sleep step was never journaled"
            time.sleep(0.01)
    time.sleep(max(0.0, started + 1.0 - time.time()))
    _kill(proc)

    run = fm_lab.resume("nap-run", store=fm_lab.Store(store_path))

    assert run.status == "succeeded", run.error
    assert run.outputs == {"after": "awake"}
    # the resumed sleep ran to the wake-up time journaled by the killed process: its start was
    # replayed, not taken again (so only the rest was slept), and it did not wake early
    store = fm_lab.Store(store_path)
    steps = fm_lab.sql("select name, result from steps where run_id = 'nap-run'", store=store)
    assert steps["name"].tolist() == ["nap#sleep"]
    assert float(steps["result"].iloc[0]) == started
    nap_ended = store.node_executions("nap-run").set_index("node_id").loc["nap", "ended_at"]
    assert nap_ended.timestamp() >= started + 3.0


# ---- cancellation --------------------------------------------------------------------------
async def test_cancel_stops_a_live_run_and_keeps_finished_work(store, register, reopen):
    started = asyncio.Event()
    seen: dict[str, object] = {}

    async def slow(ctx) -> str:
        started.set()
        try:
            await ctx.abort.wait()  # a long node watching for cancellation
            seen["abort_seen"] = True
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen["cancelled_with_abort_set"] = ctx.abort.is_set()
            raise
        return "never"

    wf = {
        "id": "cancel_me",
        "nodes": {
            "fast": {"type": "template", "config": {"template": "quick"}},
            "slow": {"type": "code", "config": {"function": register(slow)}},
            "after": {"type": "template", "config": {"template": "never"}},
        },
        "edges": ["fast -> slow", "slow -> after"],
    }
    task = asyncio.create_task(fm_lab.arun(wf, store=store, run_id="cancel-live"))
    await asyncio.wait_for(started.wait(), 60)

    fm_lab.cancel("cancel-live", store=store)
    run = await asyncio.wait_for(task, 60)  # a guard: the node would sleep an hour more

    assert run.status == "cancelled"
    assert seen == {"abort_seen": True, "cancelled_with_abort_set": True}
    assert run.node("fast").status == "succeeded"
    assert run.node("fast").output == "quick"
    assert run.node("slow").status != "succeeded"
    assert run.node("after").status == "pending"
    stored = fm_lab.get_run("cancel-live", store=reopen(store))
    assert stored.status == "cancelled"
    assert stored.node("fast").output == "quick"
    rows = store.node_executions("cancel-live").set_index("node_id")["status"].to_dict()
    assert rows.get("fast") == "succeeded"
    assert "after" not in rows


async def test_cancel_stops_a_running_foreach(store, register):
    ran: list[int] = []

    async def item(index: int) -> int:
        ran.append(index)
        await asyncio.sleep(0.05)
        return index

    wf = _foreach(
        list(range(100)),
        {
            "node": {
                "type": "code",
                "config": {"function": register(item), "args": {"index": "{{ item }}"}},
            }
        },
        concurrency=2,
    )
    task = asyncio.create_task(fm_lab.arun(wf, store=store, run_id="cancel-loop"))
    while len(ran) < 6:
        await asyncio.sleep(0.01)

    fm_lab.cancel("cancel-loop", store=store)
    run = await asyncio.wait_for(task, 60)  # a hang guard

    assert run.status == "cancelled"
    assert len(ran) < 20
    rows = store.node_executions("cancel-loop").set_index("node_id")["status"].to_dict()
    assert rows.get("loop") != "succeeded"
    finished = [n for n, s in rows.items() if n.startswith("loop[") and s == "succeeded"]
    assert 3 <= len(finished) < 20  # items done before the cancel are kept


def test_cancel_of_a_suspended_run(store):
    wf = {"id": "cancel_waiting", "nodes": {"ok": {"type": "approval", "config": {"message": "?"}}}}
    run = fm_lab.run(wf, store=store)
    assert run.status == "suspended"
    assert fm_lab.pending(store=store)["run_id"].tolist() == [run.run_id]

    fm_lab.cancel(run.run_id, store=store)

    assert fm_lab.get_run(run.run_id, store=store).status == "cancelled"
    assert fm_lab.pending(store=store).empty
    assert fm_lab.pending(run.run_id, store=store).empty
    with pytest.raises(fm_lab.ResumeError, match="cancelled, not suspended"):
        fm_lab.resume(run.run_id, {"approved": True}, label="ok", store=store)
    assert fm_lab.resume(run.run_id, store=store).status == "cancelled"
    row = fm_lab.runs(store=store).set_index("run_id").loc[run.run_id]
    assert row["status"] == "cancelled"
    assert row["ended_at"] is not None


def test_cancel_of_a_parent_also_cancels_its_suspended_child(store):
    """A parent suspended in a subflow is cancelled: its child's suspension must not stay
    pending (nobody would ever continue the parent)."""
    child = {"id": "child", "nodes": {"ok": {"type": "approval", "config": {"message": "?"}}}}
    wf = {"id": "parent", "nodes": {"sub": {"type": "subflow", "config": {"workflow": child}}}}
    run = fm_lab.run(wf, store=store)
    assert run.status == "suspended"
    (child_id,) = fm_lab.pending(store=store)["run_id"].tolist()

    fm_lab.cancel(run.run_id, store=store)

    assert fm_lab.get_run(run.run_id, store=store).status == "cancelled"
    assert fm_lab.pending(run.run_id, store=store).empty
    assert fm_lab.pending(store=store).empty, fm_lab.pending(store=store)[["run_id", "label"]]
    assert fm_lab.get_run(child_id, store=store).status == "cancelled"


WATCH_FUNCTIONS = """
import asyncio
import time
from pathlib import Path


async def watch(ctx, marker, seen):
    Path(marker).write_text("running")
    try:
        deadline = time.monotonic() + 90  # bounded: a cancel that never comes ends the node
        while not ctx.abort.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if ctx.abort.is_set():
            await asyncio.sleep(300)  # the engine cancels this
    except asyncio.CancelledError:
        Path(seen).write_text(str(ctx.abort.is_set()))
        raise
    return "not cancelled"
"""


def _watched_run(spawner, tmp_path: Path, store_path: Path, run_id: str):
    marker, seen = tmp_path / f"{run_id}.running", tmp_path / f"{run_id}.seen"
    module = spawner.write_module("watch_fns", WATCH_FUNCTIONS)
    flow = _write_flow(
        tmp_path,
        run_id,
        {
            "id": "watched",
            "nodes": {
                "first": {"type": "template", "config": {"template": "kept"}},
                "watch": {
                    "type": "code",
                    "config": {
                        "function": f"{module}:watch",
                        "args": {"marker": str(marker), "seen": str(seen)},
                    },
                },
            },
            "edges": ["first -> watch"],
        },
    )
    proc = spawner.start(RUNNER, str(store_path), str(flow), run_id)
    spawner.wait_for(marker, proc)
    return proc, seen


def _assert_cancelled_elsewhere(spawner, proc, seen: Path, store_path: Path, run_id: str) -> None:
    # the node would sleep 300 s more if it were not cancelled; the timeout is a hang guard
    assert spawner.finish(proc, timeout=120).strip() == "cancelled"
    assert seen.read_text() == "True"  # the node saw ctx.abort before it was cancelled
    stored = fm_lab.get_run(run_id, store=fm_lab.Store(store_path))
    assert stored.status == "cancelled"
    assert stored.node("first").output == "kept"


@pytest.mark.slow
def test_cancel_of_a_run_live_in_another_process(spawner, tmp_path, store_path):
    proc, seen = _watched_run(spawner, tmp_path, store_path, "remote")
    store = fm_lab.Store(store_path)
    deadline = time.monotonic() + 60
    while "remote" not in set(store.runs()["run_id"]):  # shows after its first ingest
        assert time.monotonic() < deadline
        time.sleep(0.05)

    fm_lab.cancel("remote", store=store)

    _assert_cancelled_elsewhere(spawner, proc, seen, store_path, "remote")


@pytest.mark.slow
def test_cancel_right_after_another_process_started_the_run(spawner, tmp_path, store_path):
    """The run has not reached DuckDB yet (its first ingest comes 0.25 s in), but its journal
    is there and locked: cancel must still reach it."""
    proc, seen = _watched_run(spawner, tmp_path, store_path, "young")

    fm_lab.cancel("young", store=fm_lab.Store(store_path))

    _assert_cancelled_elsewhere(spawner, proc, seen, store_path, "young")


# ---- recover() -----------------------------------------------------------------------------
RECOVER_FUNCTIONS = """
import time
from pathlib import Path


def hang_once(marker, value):
    # the first call announces itself and hangs (the test kills the process); later calls return
    flag = Path(marker)
    if not flag.exists():
        flag.write_text("reached")
        time.sleep(120)
    return value


def wait_for_release(marker, release, value):
    Path(marker).write_text("running")
    deadline = time.monotonic() + 30
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return value
"""


def _write_flow(tmp_path: Path, name: str, workflow: dict) -> Path:
    path = tmp_path / f"{name}.flow.json"
    path.write_text(fm_lab.Workflow.from_dict(workflow).to_json())
    return path


@pytest.mark.slow
def test_recover_resumes_dead_runs_and_leaves_live_ones_alone(spawner, tmp_path, store_path):
    module = spawner.write_module("recover_fns", RECOVER_FUNCTIONS)
    dead_marker = tmp_path / "dead.reached"
    live_marker, release = tmp_path / "live.running", tmp_path / "live.release"
    dead_flow = _write_flow(
        tmp_path,
        "dead",
        {
            "id": "dies",
            "nodes": {
                "first": {"type": "template", "config": {"template": "one"}},
                "hang": {
                    "type": "code",
                    "config": {
                        "function": f"{module}:hang_once",
                        "args": {"marker": str(dead_marker), "value": 2},
                    },
                },
            },
            "edges": ["first -> hang"],
        },
    )
    live_flow = _write_flow(
        tmp_path,
        "live",
        {
            "id": "lives",
            "nodes": {
                "wait": {
                    "type": "code",
                    "config": {
                        "function": f"{module}:wait_for_release",
                        "args": {"marker": str(live_marker), "release": str(release), "value": 3},
                    },
                }
            },
        },
    )
    dead = spawner.start(RUNNER, str(store_path), str(dead_flow), "dead-run")
    spawner.wait_for(dead_marker, dead)
    _kill(dead)
    live = spawner.start(RUNNER, str(store_path), str(live_flow), "live-run")
    spawner.wait_for(live_marker, live)
    store = fm_lab.Store(store_path)
    deadline = time.monotonic() + 60
    while "live-run" not in set(store.runs()["run_id"]):  # shows after its first ingest
        assert time.monotonic() < deadline, "the live run never showed in runs()"
        time.sleep(0.05)
    statuses = store.runs().set_index("run_id")["status"].to_dict()
    assert statuses == {"dead-run": "running", "live-run": "running"}

    recovered = fm_lab.recover(store=store)

    assert [r.run_id for r in recovered] == ["dead-run"]
    assert recovered[0].status == "succeeded", recovered[0].error
    assert recovered[0].outputs == {"hang": 2}
    assert live.poll() is None, "the live run's process should still be running"
    row = store.runs().set_index("run_id").loc["live-run"]
    assert row["status"] == "running"
    assert row["owner_pid"] == live.pid
    assert _journal(store_path, "live-run").exists()

    release.touch()
    assert spawner.finish(live).strip() == "succeeded"
    final = fm_lab.Store(store_path).runs().set_index("run_id")["status"].to_dict()
    assert final == {"dead-run": "succeeded", "live-run": "succeeded"}
    assert fm_lab.recover(store=fm_lab.Store(store_path)) == []
