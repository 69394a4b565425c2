"""Short runs that end while a DuckDB file store is held go into the file in groups
(store/run_groups.py): stored as one by one, seen by every read in the process, never lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import fm_lab
from fm_lab.store import Store, run_groups
from fm_lab.store.audit import verify
from fm_lab.store.errors import StoreError
from fm_lab.store.ids import RunIdInUseError

CHAIN = {"id": "grouped", "nodes": {
    "a": {"type": "template", "config": {"template": "x{{ inputs.n }}"}},
    "b": {"type": "template", "config": {"template": "{{ nodes.a.output }}y"}}},
    "edges": ["a -> b"]}
APPROVE = {"id": "asks", "nodes": {
    "ok": {"type": "approval", "config": {"message": "go?", "label": "ok"}},
    "done": {"type": "template", "config": {"template": "{{ nodes.ok.output.approved }}"}}},
    "edges": ["ok -> done"]}


@pytest.fixture
def groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each group stored (spied on)."""
    sizes: list[int] = []
    real = Store._store_group

    def spy(self: Store, con: Any, runs: list[run_groups.Deferred]) -> None:
        sizes.append(len(runs))
        real(self, con, runs)

    monkeypatch.setattr(Store, "_store_group", spy)
    return sizes


def _full_disk(patched: pytest.MonkeyPatch, once: bool = False) -> None:
    """Storing fails as on a full disk: a group, then each of its runs alone (``once``: the
    first attempt only)."""
    real_group, real_alone = Store._store_group, Store._store_one_by_one
    failing = [True]

    def group(self: Store, con: Any, runs: list[run_groups.Deferred]) -> None:
        if failing[0]:
            raise OSError(28, "No space left on device")
        real_group(self, con, runs)

    def alone(self: Store, runs: list[run_groups.Deferred]) -> list[run_groups.Deferred]:
        if failing[0]:
            failing[0] = not once
            return list(runs)
        return real_alone(self, runs)

    patched.setattr(Store, "_store_group", group)
    patched.setattr(Store, "_store_one_by_one", alone)


def _tables(store: Store) -> dict[str, pd.DataFrame]:
    """What the runs left in the file, without ids and times (which differ run to run)."""
    runs = store.sql("select status, inputs, outputs, state, error, journal_seq, "
                     "workflow_version, started_by, policy, owner_pid, ended_at is not null "
                     "as ended from runs order by inputs")
    nodes = store.sql("select r.inputs, n.node_id, n.seq, n.node_type, n.status, n.attempts, "
                      "n.input, n.output, n.leaf from node_executions n join runs r using "
                      "(run_id) order by r.inputs, n.seq")
    spans = store.sql("select r.inputs, s.kind, s.name, s.status, s.input, s.output, "
                      "s.input_size, s.output_size, s.attributes, s.node_id, s.workflow_id, "
                      "s.parent_span_id is null as root from spans s join runs r using "
                      "(run_id) order by r.inputs, s.kind, s.name")
    audit = store.sql("select action, after from audit_log order by seq")
    return {"runs": runs, "nodes": nodes, "spans": spans, "audit": audit}


def test_runs_ending_in_a_hold_are_stored_in_groups_as_one_by_one(
        tmp_path: Path, groups: list[int]) -> None:
    grouped = Store(tmp_path / "grouped.duckdb")
    single = Store(tmp_path / "single.duckdb", group_delay_s=0)
    count = run_groups.GROUP_RUNS + 6
    with grouped.hold():
        for n in range(count):
            fm_lab.run(CHAIN, {"n": f"{n:03d}"}, store=grouped)
    for n in range(count):
        fm_lab.run(CHAIN, {"n": f"{n:03d}"}, store=single)
    assert groups == [run_groups.GROUP_RUNS, 6]  # full, then the rest at the hold's end
    ours, theirs = _tables(grouped), _tables(single)
    for name in ours:
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)
    assert len(ours["runs"]) == count and set(ours["runs"]["status"]) == {"succeeded"}
    assert verify(grouped.audit_rows()) == []
    assert not list(grouped.journal_dir.glob("*.journal"))  # stored: no journal left


def test_every_read_in_the_process_sees_the_runs_finished_so_far(
        tmp_path: Path, groups: list[int]) -> None:
    path = tmp_path / "s.duckdb"
    store = Store(path)
    with store.hold():
        first = fm_lab.run(CHAIN, {"n": 1}, store=store)
        assert run_groups.pending(store.path)  # queued, its journal kept
        assert (store.journal_dir / f"{first.run_id}.journal").exists()
        assert store.load_run(first.run_id).nodes["b"]["output"] == "x1y"
        assert groups == [1]
        second = fm_lab.run(CHAIN, {"n": 2}, store=store)
        other = Store(path)  # another store of the same file in this process
        assert set(other.runs()["run_id"]) == {first.run_id, second.run_id}
        assert groups == [1, 1]
        assert first.nodes_df()["output"].tolist() == ['"x1"', '"x1y"']


def test_a_new_run_id_checked_in_a_sweep_does_not_store_the_group(
        tmp_path: Path, groups: list[int]) -> None:
    """A caller-given run id is checked against the store: that read concerns no queued run,
    so the group keeps growing (a sweep gives every run its id)."""
    store = Store(tmp_path / "s.duckdb")
    with store.hold():
        for n in range(5):
            fm_lab.run(CHAIN, {"n": n}, run_id=f"item-{n}", store=store)
        assert groups == []
        with pytest.raises(RunIdInUseError, match="item-3"):
            fm_lab.run(CHAIN, {"n": 3}, run_id="item-3", store=store)
        assert groups == [5]
    assert sorted(store.runs()["run_id"]) == [f"item-{n}" for n in range(5)]


def test_a_sweep_stores_its_runs_in_groups(tmp_path: Path, groups: list[int]) -> None:
    import fm_lab.batch

    # a group waits up to 2 s for more runs (0.05 s by default): on a loaded machine four
    # concurrent runs could end further apart than that, each then stored alone
    store = Store(tmp_path / "s.duckdb", group_delay_s=2.0)
    frame = fm_lab.batch.map(CHAIN, [{"n": n} for n in range(30)], store=store,
                             concurrency=4)
    assert frame["status"].tolist() == ["succeeded"] * 30
    assert frame["outputs"].map(lambda o: o["b"]).tolist() == [f"x{n}y" for n in range(30)]
    assert sum(groups) == 30 and len(groups) < 30


def test_runs_that_suspend_or_resume_are_stored_at_once(
        tmp_path: Path, groups: list[int]) -> None:
    store = Store(tmp_path / "s.duckdb")
    with store.hold():
        waiting = fm_lab.run(APPROVE, store=store)
        assert waiting.status == "suspended" and groups == []
        assert not run_groups.pending(store.path)
        done = fm_lab.resume(waiting.run_id, {"approved": True}, label="ok", store=store)
        assert done.status == "succeeded" and groups == []
    assert store.runs().set_index("run_id").loc[waiting.run_id, "status"] == "succeeded"


def test_a_group_that_cannot_be_stored_says_so_and_stays_queued(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Storing fails (a full disk): the hold's end raises one clear error, the runs stay
    queued, each in its journal, and the next use of the store puts them in."""
    store = Store(tmp_path / "s.duckdb")
    with monkeypatch.context() as patched:
        _full_disk(patched)
        with pytest.raises(StoreError, match=r"storing 3 finished runs .* No space left on "
                           r"device\); they stay queued"), store.hold():
            ids = [fm_lab.run(CHAIN, {"n": n}, store=store).run_id for n in range(3)]
        assert run_groups.pending(store.path)
        assert {p.stem for p in store.journal_dir.glob("*.journal")} == set(ids)
    assert sorted(store.runs()["run_id"]) == sorted(ids)  # the next use stores them
    assert not list(store.journal_dir.glob("*.journal"))


def test_an_interrupted_group_store_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while a group goes in: the interrupt goes through, the runs stay queued, and
    any store of the file puts them in next."""
    path = tmp_path / "s.duckdb"
    store = Store(path)
    real = Store._store_group
    interrupted: list[bool] = []

    def interrupt(self: Store, con: Any, runs: Any) -> None:
        if not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt
        real(self, con, runs)

    monkeypatch.setattr(Store, "_store_group", interrupt)
    with pytest.raises(KeyboardInterrupt), store.hold():
        ids = [fm_lab.run(CHAIN, {"n": n}, store=store).run_id for n in range(5)]
    assert sorted(store.runs()["run_id"]) == sorted(ids)  # queued again, not lost


def test_a_queued_run_stores_what_its_journal_says_whatever_the_caller_changes_after(
        tmp_path: Path) -> None:
    """A queued run is stored from its journal's text: a parameters dict the caller reuses,
    or outputs it edits once the run has returned, do not leak in."""
    store = Store(tmp_path / "s.duckdb")
    echo = {"id": "echo", "nodes": {"a": {"type": "template",
                                          "config": {"template": "{{ inputs.cfg }}"}}}}
    params: dict[str, Any] = {"cfg": {"v": 0}}
    with store.hold():
        runs = []
        for v in range(3):
            params["cfg"]["v"] = v  # one dict, changed between runs
            runs.append(fm_lab.run(echo, params, store=store))
        runs[0].outputs["a"]["v"] = "edited"
        runs[0]._nodes["a"]["status"] = "edited"
    stored = store.runs().set_index("run_id")
    assert [stored.loc[r.run_id, "inputs"] for r in runs] == [
        f'{{"cfg":{{"v":{v}}}}}' for v in range(3)]
    assert stored.loc[runs[0].run_id, "outputs"] == '{"a":{"v":0}}'
    assert store.node_executions(runs[0].run_id)["status"].tolist() == ["succeeded"]


def test_a_queued_run_stays_locked_and_a_resume_stores_it_first(tmp_path: Path) -> None:
    """A queued run's journal stays locked until its group is stored, so no other process
    takes it for a dead one's; resuming it here stores the group first."""
    from fm_lab.store.journal import RunLockedError, try_lock

    path = tmp_path / "s.duckdb"
    store, other = Store(path), Store(path)
    with store.hold():
        first = fm_lab.run(CHAIN, {"n": 1}, store=store)
        assert try_lock(store.journal_path(first.run_id)) is None  # held, though it ended
        assert not store.run_is_live(first.run_id)  # this process knows it has ended
        resumer = other.open_journal(first.run_id)  # as fm_lab.resume does
        assert resumer is not None and not run_groups.queued(store.path, first.run_id)
        assert other.run_status(first.run_id) == "succeeded"  # stored before the journal
        with pytest.raises(RunLockedError):
            other.open_journal(first.run_id)  # the resumer's now
        resumer.close(remove=True)
    assert not list(store.journal_dir.glob("*.journal"))


OTHER_PROCESS = """
import sys, fm_lab
run = fm_lab.run({"id": "other", "nodes": {"a": {"type": "template",
                  "config": {"template": "o"}}}}, store=fm_lab.Store(sys.argv[1]))
print(run.status)
"""


def test_another_process_works_beside_a_hold_with_queued_runs(tmp_path: Path) -> None:
    """Another process opening the store while runs are queued does not take their journals
    for a dead process's (it would wait for the held file, then fail to open): it runs, its
    records wait in its journal, and the next open stores them."""
    path = tmp_path / "s.duckdb"
    store = Store(path)
    with store.hold():
        fm_lab.run(CHAIN, {"n": 1}, store=store)
        done = subprocess.run(
            [sys.executable, "-c", OTHER_PROCESS, str(path)], capture_output=True, text=True,
            timeout=120, env={**os.environ, "FM_LAB_LOCK_TIMEOUT_S": "0.2",
                              "PYTHONPATH": os.pathsep.join(sys.path)})
        assert done.stdout.strip() == "succeeded", done.stderr
    assert set(Store(path).runs()["workflow_id"]) == {"grouped", "other"}


def test_a_run_joining_a_group_that_cannot_be_stored_is_not_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The group before it could not go in: the run that would join it still succeeds and is
    queued; the hold's end raises, and the next use stores them all."""
    import logging

    monkeypatch.setattr(run_groups, "GROUP_RUNS", 2)
    store = Store(tmp_path / "s.duckdb")
    with monkeypatch.context() as patched, caplog.at_level(logging.WARNING, "fm_lab"):
        _full_disk(patched)
        with pytest.raises(StoreError, match="storing 3 finished runs"), store.hold():
            runs = [fm_lab.run(CHAIN, {"n": n}, store=store) for n in range(3)]
            assert [r.status for r in runs] == ["succeeded"] * 3
    assert "storing 2 finished runs" in caplog.text
    assert len(store.runs()) == 3


def test_a_read_only_store_leaves_the_queue_to_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    store = Store(path)
    fm_lab.run(CHAIN, {"n": 0}, store=store)
    with store.hold():
        fm_lab.run(CHAIN, {"n": 1}, store=store)
        reader = Store(path, read_only=True)
        reader.store_groups()  # nothing: a read-only store writes nothing
        assert run_groups.pending(store.path)
    assert len(Store(path, read_only=True).runs()) == 2


def test_an_error_in_the_hold_is_the_one_raised(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "s.duckdb")
    _full_disk(monkeypatch)
    with pytest.raises(ValueError, match="the block's own"), store.hold():
        fm_lab.run(CHAIN, {"n": 1}, store=store)
        raise ValueError("the block's own")
    assert run_groups.pending(store.path)  # still queued, safe in its journal
    monkeypatch.undo()
    assert len(store.runs()) == 1


def test_many_audit_entries_go_in_at_once(tmp_path: Path) -> None:
    """More entries than fit list parameters go through Arrow, times included."""
    from fm_lab.store.audit import entry

    store = Store(tmp_path / "s.duckdb")
    store.append_audit([entry("store.setting", "ann", path=f"k{i}", after=i)
                        for i in range(300)])
    rows = store.audit_rows()
    assert len(rows) == 300 and verify(rows) == []


KILLED_IN_A_HOLD = """
import os, sys
import fm_lab
store = fm_lab.Store(sys.argv[1])
with store.hold():
    for n in range(7):
        fm_lab.run({"id": "k", "nodes": {"a": {"type": "template",
                    "config": {"template": "{{ inputs.n }}"}}}}, {"n": n}, store=store)
    print("ran", flush=True)
    os._exit(0)  # as a SIGKILL would: no hold exit, no atexit
"""


def test_a_process_that_dies_in_a_hold_loses_no_finished_run(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    done = subprocess.run([sys.executable, "-c", KILLED_IN_A_HOLD, str(path)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.stdout.strip() == "ran", done.stderr
    assert len(list(Path(f"{path}.journal").glob("*.journal"))) == 7  # queued, not stored
    store = Store(path)
    runs = store.runs()
    assert len(runs) == 7 and set(runs["status"]) == {"succeeded"}
    assert sorted(runs["outputs"]) == sorted(f'{{"a":{n}}}' for n in range(7))


def test_only_whole_short_runs_wait_in_a_group() -> None:
    from fm_lab.store.columns import SMALL

    start, end = {"k": "start", "seq": 1}, {"k": "run", "seq": 999}
    nodes = [{"k": "node", "seq": s} for s in range(2, 5)]
    assert run_groups.fits([start, *nodes, end])
    assert not run_groups.fits([*nodes, end])  # a later segment: the start was ingested
    assert not run_groups.fits([start, *nodes])  # not ended
    assert not run_groups.fits([start, {"k": "suspend", "seq": 2}, end])
    assert not run_groups.fits([start, end, {"k": "run", "seq": 1000}])
    many = [{"k": "span", "seq": s} for s in range(2, SMALL + 3)]
    assert not run_groups.fits([start, *many, end])  # a long run's spans: the bulk path


def test_a_reader_waits_while_another_thread_stores_the_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs taken from the queue to be stored are not visible until they are in: another
    thread reading the file meanwhile waits for them, never finds them missing."""
    import threading

    path = tmp_path / "s.duckdb"
    held = Store(path)
    entered, release = threading.Event(), threading.Event()
    real = Store._store_group

    def slow(self: Store, con: Any, runs: list[run_groups.Deferred]) -> None:
        entered.set()
        assert release.wait(60)
        real(self, con, runs)

    with held.hold():
        run = fm_lab.run(CHAIN, {"n": 7}, store=held)
        monkeypatch.setattr(Store, "_store_group", slow)
        storer = threading.Thread(target=lambda: Store(path).runs())  # stores the group
        storer.start()
        assert entered.wait(60)
        found: list[Any] = []
        reader = threading.Thread(  # a third store of the file, while the group goes in
            target=lambda: found.append(Store(path, read_only=True).load_run(run.run_id)))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive()  # waiting for the group, not answering without it
        release.set()
        storer.join(60)
        reader.join(60)
        assert found and found[0].nodes["b"]["output"] == "x7y"


# ---- outside a hold: finished runs are stored a moment later, in the background --------------
def _journals(store: Store) -> list[Path]:
    return sorted(store.journal_dir.glob("*.journal"))


def _until(condition: Any, timeout_s: float = 30.0) -> bool:
    """Poll ``condition`` (no timing is asserted: a generous bound for a loaded machine)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_finished_run_is_stored_a_moment_later_with_no_further_call(
        tmp_path: Path, groups: list[int]) -> None:
    store = Store(tmp_path / "s.duckdb", group_delay_s=0.05)
    run = fm_lab.run(CHAIN, {"n": 1}, store=store)
    assert run.status == "succeeded"
    assert _until(lambda: not _journals(store))  # no read, no close: the background stored it
    assert groups == [1]
    assert store.run_status(run.run_id) == "succeeded"


def test_runs_in_a_plain_loop_are_stored_in_groups_as_one_by_one(
        tmp_path: Path, groups: list[int]) -> None:
    grouped = Store(tmp_path / "grouped.duckdb", group_delay_s=60)
    single = Store(tmp_path / "single.duckdb", group_delay_s=0)
    count = run_groups.GROUP_RUNS + 6
    for n in range(count):
        fm_lab.run(CHAIN, {"n": f"{n:03d}"}, store=grouped)
    assert groups == [run_groups.GROUP_RUNS] and len(_journals(grouped)) == 6
    for n in range(count):
        fm_lab.run(CHAIN, {"n": f"{n:03d}"}, store=single)
        assert not _journals(single)  # delay 0: each stored at its end
    assert groups == [run_groups.GROUP_RUNS]  # each ingested alone
    ours, theirs = _tables(grouped), _tables(single)  # the read stores the last 6 first
    assert groups[-1] == 6 and not _journals(grouped)
    for name in ours:
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)
    assert verify(grouped.audit_rows()) == []


def test_a_store_that_closes_stores_its_queued_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb", group_delay_s=60)
    run = fm_lab.run(CHAIN, {"n": 1}, store=store)
    assert len(_journals(store)) == 1
    store.close()
    assert not _journals(store)
    assert Store(tmp_path / "s.duckdb").run_status(run.run_id) == "succeeded"


READER = """
import sys, fm_lab
print(fm_lab.Store(sys.argv[1], read_only=True).run_status(sys.argv[2]), flush=True)
"""
SAYS_WHAT_IT_WAITS_FOR = """
from fm_lab.store import group_wait
found = group_wait.queued_elsewhere
def said(*args):
    queued, dead = found(*args)
    print("waiting for", len(queued), flush=True)
    return queued, dead
group_wait.queued_elsewhere = said
"""


@pytest.mark.parametrize("made", [True, False], ids=["file_there", "first_run"])
def test_another_process_reading_waits_for_the_runs_queued_here(
        tmp_path: Path, made: bool) -> None:
    """A reader in another process sees a run that ended before it read, while its group still
    waits here (for a minute): it waits for the group, stored here once it waits."""
    path = tmp_path / "s.duckdb"
    store = Store(path, group_delay_s=60)
    if made:
        fm_lab.run(CHAIN, {"n": 0}, store=Store(path, group_delay_s=0))  # the file is there
    run = fm_lab.run(CHAIN, {"n": 1}, store=store)
    assert len(_journals(store)) == 1
    reader = subprocess.Popen(
        [sys.executable, "-c", SAYS_WHAT_IT_WAITS_FOR + READER, str(path), run.run_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "FM_LAB_LOCK_TIMEOUT_S": "600",
             "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "waiting for 1"  # found the queued run
        store.store_groups()  # only now: the reader waits for it until then
        out, err = reader.communicate(timeout=120)
    finally:
        reader.kill()
    assert out.strip() == "succeeded", err


WRITER = """
import os, sys, fm_lab
store = fm_lab.Store(sys.argv[1], group_delay_s=60)
run = fm_lab.run({"id": "w", "nodes": {"a": {"type": "template",
                  "config": {"template": "w"}}}}, store=store)
print(run.run_id, flush=True)
if sys.argv[2] == "kill":
    os._exit(0)  # as a SIGKILL would: no close, no atexit
"""


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_a_process_that_ends_with_runs_queued_loses_none(tmp_path: Path, ending: str) -> None:
    """An exit stores them (and folds the WAL in after); a killed process leaves them durable
    in their journals, which the next open takes in."""
    path = tmp_path / "s.duckdb"
    done = subprocess.run([sys.executable, "-c", WRITER, str(path), ending],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    left = list(Path(f"{path}.journal").glob("*.journal"))
    if ending == "exit":
        assert not left  # stored at exit
        wal = Path(f"{path}.wal")
        assert not wal.exists() or wal.stat().st_size == 0  # then folded into the file
    else:
        assert len(left) == 1  # durable, not stored
    store = Store(path)
    assert store.run_status(done.stdout.strip()) == "succeeded"  # (killed: recovered now)
    assert not _journals(store)


def test_a_group_the_background_cannot_store_is_logged_and_tried_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    _full_disk(monkeypatch, once=True)
    store = Store(tmp_path / "s.duckdb", group_delay_s=0.01)
    run = fm_lab.run(CHAIN, {"n": 1}, store=store)
    assert _until(lambda: not _journals(store))  # the second try stored it
    assert "No space left on device" in caplog.text and "tried again" in caplog.text
    assert store.run_status(run.run_id) == "succeeded"


def test_the_group_delay_comes_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(run_groups.GROUP_DELAY_ENV, "0")
    store = Store(tmp_path / "s.duckdb")
    assert store.group_delay_s == 0
    fm_lab.run(CHAIN, {"n": 1}, store=store)
    assert not _journals(store)
    monkeypatch.setenv(run_groups.GROUP_DELAY_ENV, "soon")
    with pytest.raises(StoreError, match="FM_LAB_GROUP_DELAY_S='soon' is not a number"):
        Store(tmp_path / "t.duckdb")


def test_a_reader_that_waited_long_enough_says_the_run_waits_to_be_stored(
        tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    run = fm_lab.run(CHAIN, {"n": 1}, store=Store(path, group_delay_s=60))
    done = subprocess.run(
        [sys.executable, "-c", READER, str(path), run.run_id], capture_output=True, text=True,
        timeout=120, env={**os.environ, "FM_LAB_LOCK_TIMEOUT_S": "0.3",
                          "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode != 0
    assert "ends with the run's end: the process that ran it has not stored it yet" \
        in done.stderr


def test_a_run_the_group_cannot_take_does_not_hold_the_others_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A group fails on something in one run: each goes in alone, as a recovery would."""
    real = Store._store_group

    def fails_with_the_bad_one(self: Store, con: Any, runs: list[run_groups.Deferred]) -> None:
        if any(b'"bad"' in b"".join(run.texts.values()) for run in runs):
            raise ValueError("a value the group's insert cannot take")
        real(self, con, runs)

    monkeypatch.setattr(Store, "_store_group", fails_with_the_bad_one)
    store = Store(tmp_path / "s.duckdb", group_delay_s=60)
    ids = [fm_lab.run(CHAIN, {"n": n}, store=store).run_id for n in ("a", "bad", "c")]
    assert set(store.runs()["run_id"]) == set(ids)  # all three, each alone
    assert not _journals(store)
