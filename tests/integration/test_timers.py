"""Timers fire due waits (issue 15, item 7): an expired approval and a due sleep resume
without anyone calling resume; recover() fires due suspended runs and skips live ones; two
timers on one store fire a wait once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

import fm_lab
from fm_lab.engine.wakeups import due_runs
from fm_lab.timers import Timer

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

WAIT_S = 0.3


@pytest.fixture
def timers() -> Iterator[list[Timer]]:
    """Timers a test starts; stopped (threads joined) at teardown."""
    started: list[Timer] = []
    yield started
    for timer in started:
        timer.stop()
    fm_lab.timers.stop()
    assert not any(t.running for t in started)
    assert fm_lab.timers.running() == []


def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)


def _counter(register) -> tuple[str, list[str]]:
    """A code node function that counts its calls (the side effect after the wait)."""
    calls: list[str] = []
    lock = threading.Lock()

    def after(label: str) -> str:
        with lock:
            calls.append(label)
        return label

    return register(after), calls


def _approval(after: str, run_tag: str) -> dict:
    return {
        "id": f"timed_approval_{run_tag}",
        "nodes": {
            "ok": {"type": "approval", "config": {"message": "?", "timeout_s": WAIT_S}},
            "after": {"type": "code", "config": {"function": after, "args": {"label": run_tag}}},
        },
        "edges": ["ok.rejected -> after"],
    }


def _sleep(after: str) -> dict:
    return {
        "id": "suspended_sleep",
        "nodes": {
            "nap": {"type": "sleep", "config": {"seconds": WAIT_S, "suspend": True}},
            "after": {"type": "code", "config": {"function": after, "args": {"label": "nap"}}},
        },
        "edges": ["nap -> after"],
    }


def _status(store: fm_lab.Store, run_id: str) -> str:
    return store.run_status(run_id)


def test_timer_fires_an_expired_approval_and_a_due_sleep(store, register, timers):
    after, calls = _counter(register)
    approval = fm_lab.run(_approval(after, "approval"), store=store)
    nap = fm_lab.run(_sleep(after), store=store)
    assert (approval.status, nap.status) == ("suspended", "suspended")
    assert sorted(fm_lab.pending(store=store)["label"]) == ["nap", "ok"]

    timers.append(fm_lab.timers.start(store, interval_s=0.05))

    for run in (approval, nap):
        _until(lambda run=run: _status(store, run.run_id) == "succeeded", f"{run.run_id} woke")
    assert sorted(calls) == ["approval", "nap"]
    done = fm_lab.get_run(approval.run_id, store=store)
    assert done.node("ok").output == {"approved": False, "comment": "timed out", "by": None}
    assert fm_lab.get_run(nap.run_id, store=store).node("nap").output == {"slept_s": WAIT_S}
    assert fm_lab.pending(store=store).empty
    assert {r.run_id for r in timers[0].fired} == {approval.run_id, nap.run_id}


def test_recover_fires_due_suspended_runs_and_skips_live_ones(store, register):
    after, calls = _counter(register)
    due = fm_lab.run(_approval(after, "due"), store=store)
    live = fm_lab.run(_approval(after, "live"), store=store)
    _until(lambda: set(due_runs(store)[0]) == {due.run_id, live.run_id}, "both waits expired")
    journal = store.open_journal(live.run_id)  # as if another process were resuming it
    assert journal is not None
    try:
        resumed = fm_lab.recover(store=store)
    finally:
        journal.close()

    assert [r.run_id for r in resumed] == [due.run_id]
    assert resumed[0].status == "succeeded"
    assert calls == ["due"]
    assert _status(store, live.run_id) == "suspended"

    resumed = fm_lab.recover(store=store)  # no longer live: its turn

    assert [(r.run_id, r.status) for r in resumed] == [(live.run_id, "succeeded")]
    assert calls == ["due", "live"]


def test_two_timers_on_one_store_fire_a_wait_once(store, store_path, register, timers):
    after, calls = _counter(register)
    run = fm_lab.run(_approval(after, "once"), store=store)
    other = fm_lab.Store(store_path)  # another store object: its own lock file handle

    timers.append(Timer(store, interval_s=0.01).start())
    timers.append(Timer(other, interval_s=0.01).start())

    _until(lambda: _status(store, run.run_id) == "succeeded", "the wait fired")
    for timer in timers:
        timer.stop()  # lets a resume under way finish
    assert calls == ["once"]
    assert sum(len(t.fired) for t in timers) == 1


def test_a_short_sleep_stays_in_process_and_a_long_one_suspends(store):
    short = {"id": "short_nap", "nodes": {"nap": {"type": "sleep", "config": {"seconds": 0.01}}}}
    long = {"id": "long_nap", "nodes": {"nap": {"type": "sleep", "config": {"seconds": 3600}}}}

    assert fm_lab.run(short, store=store).status == "succeeded"
    waiting = fm_lab.run(long, store=store)

    assert waiting.status == "suspended"
    (row,) = fm_lab.pending(store=store).to_dict("records")
    assert row["run_id"] == waiting.run_id
    assert (row["expires_at"] - row["since"]).total_seconds() == pytest.approx(3600, abs=5)
    assert due_runs(store)[0] == []


def test_start_without_a_store_needs_one_opened(monkeypatch):

    monkeypatch.setattr("fm_lab.store.default._STORE", None)
    with pytest.raises(ValueError, match="connect"):
        fm_lab.timers.start()


def test_cli_recover_fires_a_due_wait(store, register, capsys):
    from fm_lab.cli import main

    after, calls = _counter(register)
    run = fm_lab.run(_approval(after, "cli"), store=store)
    _until(lambda: due_runs(store)[0] == [run.run_id], "the wait expired")

    assert main(["--store", store.path, "recover", "--json"]) == 0

    assert [(r["run_id"], r["status"]) for r in _json_out(capsys)] == [(run.run_id, "succeeded")]
    assert calls == ["cli"]


def _json_out(capsys) -> list[dict]:
    import json

    return json.loads(capsys.readouterr().out)
