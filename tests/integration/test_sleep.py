"""``sleep`` and ``sleep_until`` in one process: the wake-up time is journaled as a step, a time
that has passed does not wait, and a cancel stops a run in the middle of its sleep. (A resume
after a kill sleeping only the rest: test_foreach.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)


def _nap(node: dict) -> dict:
    return {"id": "nap", "nodes": {"nap": node,
                                   "after": {"type": "template", "config": {"template": "awake"}}},
            "edges": ["nap -> after"]}


def test_sleep_journals_its_start_and_wakes_after_it(store):
    run = fm_lab.run(_nap({"type": "sleep", "config": {"seconds": 0.2}}), store=store)
    assert run.status == "succeeded", run.error
    assert run.node("nap").output == {"slept_s": 0.2}
    assert run.outputs == {"after": "awake"}
    steps = fm_lab.sql("select name, result from steps where run_id = ?", [run.run_id],
                       store=store)
    assert steps["name"].tolist() == ["nap#sleep"]  # the wake-up clock a resume reads
    started = float(steps["result"].iloc[0])
    ended = store.node_executions(run.run_id).set_index("node_id").loc["nap", "ended_at"]
    assert ended.timestamp() >= started + 0.2  # never early


def test_sleep_until_a_future_time_wakes_at_it():
    until = time.time() + 0.3
    run = fm_lab.run(_nap({"type": "sleep_until", "config": {"until": until}}))
    assert run.status == "succeeded", run.error
    assert run.node("nap").output == {
        "until": dt.datetime.fromtimestamp(until, dt.UTC).isoformat()}
    assert run.node("nap").ended_at.timestamp() >= until  # never early


def test_sleep_until_a_past_time_goes_on_and_reads_iso_text():
    naive = fm_lab.run(_nap({"type": "sleep_until", "config": {"until": "2001-01-01T00:00:00"}}))
    assert naive.status == "succeeded", naive.error
    assert naive.node("nap").output == {"until": "2001-01-01T00:00:00+00:00"}  # naive is UTC
    offset = fm_lab.run(_nap({"type": "sleep_until",
                              "config": {"until": "2001-01-01T02:00:00+02:00"}}))
    assert offset.node("nap").output == {"until": "2001-01-01T00:00:00+00:00"}
    assert offset.outputs == {"after": "awake"}


def _awaiting(task: asyncio.Task) -> list[str]:
    """The names of the coroutines ``task`` is suspended in, outermost first."""
    names, coro = [], task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None)
        if frame is not None:
            names.append(frame.f_code.co_name)
        coro = getattr(coro, "cr_await", None)
    return names


def _sleeping() -> bool:
    """Some task is inside NodeContext.sleep_until, waiting out its time (or an abort)."""
    return any(names[-2:] == ["sleep_until", "wait_for"]
               for names in map(_awaiting, asyncio.all_tasks()))


async def _cancel_while_sleeping(store, node: dict, run_id: str):
    task = asyncio.create_task(fm_lab.arun(_nap(node), store=store, run_id=run_id))
    deadline = time.monotonic() + 30  # the loop polls; the guard only stops a hang
    while not _sleeping():
        assert not task.done(), task.result().error
        assert time.monotonic() < deadline, "the node never started sleeping"
        await asyncio.sleep(0.01)
    fm_lab.cancel(run_id, store=store)
    return await asyncio.wait_for(task, 30)  # a guard: the sleep is an hour long


async def test_a_cancel_stops_a_run_in_the_middle_of_its_sleep(store, reopen):
    nap = {"type": "sleep", "config": {"seconds": 3600, "suspend": False}}
    run = await _cancel_while_sleeping(store, nap, "asleep")
    assert run.status == "cancelled"
    assert run.node("nap").status != "succeeded"
    assert run.node("after").status == "pending"
    assert fm_lab.get_run("asleep", store=reopen(store)).status == "cancelled"


async def test_a_cancel_stops_a_sleep_until(store):
    later = time.time() + 3600
    run = await _cancel_while_sleeping(
        store, {"type": "sleep_until", "config": {"until": later, "suspend": False}}, "until-later")
    assert run.status == "cancelled"
    assert run.node("after").status == "pending"
