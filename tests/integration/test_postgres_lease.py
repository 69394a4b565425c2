"""A PostgreSQL run whose commits fail, whose sessions the server ends, or whose lease another
process takes while it is paused: committed work is kept, the failure is clear and sticky,
the run is recovered later without redoing committed nodes, and never two processes write
one run."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

import fm_lab
from fm_lab.store import open_store

pytestmark = pytest.mark.slow

REFUSE_BOOM = """
create function refuse_boom() returns trigger language plpgsql as $$
begin
  if new.node_id = 'boom' then raise exception 'boom refused by a trigger'; end if;
  return new;
end $$;
create trigger refuse_boom before insert on node_executions
  for each row execute function refuse_boom();
"""


def _holder(url: str, run_id: str) -> int | None:
    """The backend pid of the session holding ``run_id``'s run lock, if any."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select pid from pg_locks where locktype = 'advisory' and granted and "
            "((classid::int8 << 32) | objid::int8) = hashtextextended('fm_lab.run:' || %s, 0)",
            [run_id]).fetchone()
    return None if row is None else int(row[0])


def _end_sessions(url: str, pids: str) -> None:
    """Terminate the sessions ``pids`` (SQL selecting backend pids), as a server restart
    would, and wait until they are gone (a hang guard, not a timing assertion)."""
    with psycopg.connect(url, autocommit=True) as conn:
        ended = [r[0] for r in conn.execute(
            f"select pid, pg_terminate_backend(pid) from ({pids}) p").fetchall()]
        deadline = time.monotonic() + 30
        while conn.execute("select count(*) from pg_stat_activity where pid = any(%s)",
                           [ended]).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, "the terminated sessions did not end"
            time.sleep(0.02)


def test_a_commit_the_server_refuses_fails_the_run_clearly_and_it_resumes_later(
        pg_url: str, register: Any) -> None:
    calls: list[str] = []

    def step(name: str) -> str:
        calls.append(name)
        return name

    fn = register(step)
    wf = {"id": "refused", "nodes": {
        n: {"type": "code", "config": {"function": fn, "args": {"name": n}}}
        for n in ("a", "boom", "c")}, "edges": ["a -> boom", "boom -> c"],
        "outputs": {"c": "{{ nodes.c.output }}"}}
    store = fm_lab.connect(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(REFUSE_BOOM)

    run = fm_lab.run(wf, store=store, progress=False)

    assert run.status == "failed"
    assert run.error["kind"] == "system"
    message = run.error["message"]
    assert "boom refused by a trigger" in message and "\n" not in message
    assert calls == ["a", "boom"]  # c never started: boom's result is not stored
    assert store.run_status(run.run_id) == "failed"  # the end is stored, with why
    stored = fm_lab.get_run(run.run_id, store=store)
    assert "boom refused by a trigger" in stored.error["message"]
    assert stored.node("a").status == "succeeded"
    assert not store.run_is_live(run.run_id)

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("drop trigger refuse_boom on node_executions")
    again = fm_lab.resume(run.run_id, store=store, progress=False)
    assert (again.status, again.outputs) == ("succeeded", {"c": "c"})
    assert calls == ["a", "boom", "boom", "c"]  # a's committed result was kept
    store.close()


RECOVER = """
import json, sys
import fm_lab

store = fm_lab.connect(sys.argv[1])
print(json.dumps([[r.run_id, r.status] for r in fm_lab.recover(store)]))
"""


def test_sessions_the_server_ends_mid_run_are_taken_again_and_the_run_goes_on(
        pg_url: str, register: Any, spawner: Any) -> None:
    run_id = f"cut-{uuid.uuid4().hex[:8]}"
    calls: list[str] = []
    seen: dict[str, Any] = {}

    def cut() -> str:
        calls.append("cut")
        # every session of this process (its pool and its lock session), as a restart would
        _end_sessions(pg_url, "select pid from pg_stat_activity where application_name in "
                      "('fm_lab', 'fm_lab run locks')")
        deadline = time.monotonic() + 60  # the running engine takes its lease again
        while _holder(pg_url, run_id) is None:
            assert time.monotonic() < deadline, "the live run did not take its lease again"
            time.sleep(0.05)
        # another process trying to recover meanwhile leaves the live run alone
        seen["recovered"] = spawner.finish(spawner.start(RECOVER, pg_url)).strip()
        return "cut"

    def after() -> str:
        calls.append("after")
        return "after"

    wf = {"id": "cut_sessions", "nodes": {
        "cut": {"type": "code", "config": {"function": register(cut)}},
        "after": {"type": "code", "config": {"function": register(after)}}},
        "edges": ["cut -> after"], "outputs": {"after": "{{ nodes.after.output }}"}}
    store = fm_lab.connect(pg_url)

    run = fm_lab.run(wf, store=store, run_id=run_id, progress=False)

    assert (run.status, run.outputs) == ("succeeded", {"after": "after"}), run.error
    assert seen["recovered"] == "[]"
    assert calls == ["cut", "after"]
    history = store.node_executions(run_id, history=True)
    assert sorted(history["node_id"]) == ["after", "cut"]  # each stored once
    assert store.run_status(run_id) == "succeeded"
    assert not store.run_is_live(run_id)
    store.close()


FUNCTIONS = """
import time
from pathlib import Path


def step(name, log):
    with open(log, "a") as fh:
        fh.write(name + "\\n")
    return name


def wait_once(name, log, marker, go):
    if not Path(marker).exists():  # the first process to get here waits for "go"
        Path(marker).write_text("reached")
        while not Path(go).exists():
            time.sleep(0.01)
    return step(name, log)
"""

RUNNER = """
import sys
import fm_lab

url, wf_path, run_id = sys.argv[1:]
try:
    run = fm_lab.run(fm_lab.Workflow.from_file(wf_path), store=fm_lab.connect(url),
                     run_id=run_id, progress=False)
except OSError as exc:
    print(f"{type(exc).__name__}: {exc}")
    sys.exit(3)
print(run.status)
"""


def test_a_paused_process_whose_run_another_took_stops_writing_it(
        pg_url: str, spawner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FM_LAB_ALLOW", "lease_fns_*")  # a team store runs restricted
    log, marker, go = tmp_path / "effects.log", tmp_path / "c.reached", tmp_path / "go"
    module = spawner.write_module("lease_fns", FUNCTIONS)
    builder = fm_lab.WorkflowBuilder("lease_lost", outputs={"d": "{{ nodes.d.output }}"})
    a = builder.node("a", "code", function=f"{module}:step", args={"name": "a", "log": str(log)})
    c = builder.node("c", "code", function=f"{module}:wait_once",
                     args={"name": "c", "log": str(log), "marker": str(marker), "go": str(go)})
    d = builder.node("d", "code", function=f"{module}:step", args={"name": "d", "log": str(log)})
    a >> c >> d
    wf_path = tmp_path / "lease.flow.json"
    wf_path.write_text(builder.build().to_json())
    run_id = f"lease-{uuid.uuid4().hex[:8]}"

    first = spawner.start(RUNNER, pg_url, str(wf_path), run_id)
    spawner.wait_for(marker, first)
    os.kill(first.pid, signal.SIGSTOP)  # paused (a long GC, a frozen VM) ...
    holder = _holder(pg_url, run_id)
    assert holder is not None
    _end_sessions(pg_url, f"select {holder} as pid")  # ... while the server ends its lease

    # another process sees the run free and recovers it to the end
    recovered = spawner.finish(spawner.start(RECOVER, pg_url)).strip()
    assert recovered == f'[["{run_id}", "succeeded"]]'

    go.write_text("go")
    os.kill(first.pid, signal.SIGCONT)  # the first process wakes up with c done
    out, err = first.communicate(timeout=120)
    assert first.returncode == 3, (out, err)
    assert "taken over by another process" in out and out.count("\n") == 1, out

    store = open_store(pg_url)
    run = fm_lab.get_run(run_id, store=store)
    assert (run.status, run.outputs) == ("succeeded", {"d": "d"})
    assert sorted(log.read_text().split()) == ["a", "c", "c", "d"]  # c ran in both
    history = store.node_executions(run_id, history=True)
    done = history[history["status"] == "succeeded"]
    assert sorted(done["node_id"]) == ["a", "c", "d"]  # the first process stored no more
    assert not store.run_is_live(run_id)
    store.close()


def test_a_new_run_takes_its_lock_without_waiting_for_an_earlier_holder(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settling (waiting out a commit of the run's last holder) is a round trip a run being
    started skips: nobody held it. A resume still settles, and both hold the run's lock."""
    from fm_lab.store.pg_store import PostgresStore

    settled: list[str] = []
    real_settle = PostgresStore.settle

    def settle(self: PostgresStore, run_id: str) -> None:
        settled.append(run_id)
        real_settle(self, run_id)

    monkeypatch.setattr(PostgresStore, "settle", settle)
    store = open_store(pg_url)
    try:
        approve = {"id": "wait_once", "nodes": {
            "ok": {"type": "approval", "config": {"message": "go?", "label": "ok"}}}}
        run = fm_lab.run(approve, store=store)
        assert run.status == "suspended" and settled == []
        assert _holder(pg_url, run.run_id) is None  # released at the suspension
        resumed = fm_lab.resume(run.run_id, {"approved": True}, label="ok", store=store)
        assert resumed.status == "succeeded" and settled == [run.run_id]
    finally:
        store.close()
