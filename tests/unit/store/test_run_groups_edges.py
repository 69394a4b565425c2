"""Finished runs queued to be stored a moment later (store/run_groups.py, group_timer.py,
group_wait.py) at the edges a review found: the exit, forks, recoveries meeting, holds,
read-only stores and readers, a deleted folder. Where a test bounds a wait, the bound is a
fraction of a lock timeout set long: it tells "waited for the timeout" from "did not wait"."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import fm_lab
from fm_lab.store import Store, run_groups

CHAIN = {"id": "grouped", "nodes": {
    "a": {"type": "template", "config": {"template": "x{{ inputs.n }}"}}}}
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _journals(path: Path) -> list[str]:
    return sorted(p.name for p in Path(f"{path}.journal").glob("*.journal"))


def _made(path: Path) -> None:
    """The store file is there (a run stored at its end)."""
    fm_lab.run(CHAIN, {"n": -1}, store=Store(path, group_delay_s=0))


def _ends(script: str, *args: str) -> tuple[int, str, str]:
    """Run ``script`` in a new interpreter: its exit code, stdout and stderr; the test fails
    if it has not ended in 60 s (a hang: the scripts take about a second)."""
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the process hangs, after printing {out!r}")
    return proc.returncode, out, err


@pytest.fixture
def slow_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """A group store that takes a second inside its transaction (a big group, a slow disk)."""
    real = Store._append_audit

    def slow(con: Any, entries: Any) -> None:
        time.sleep(1.0)
        real(con, entries)

    monkeypatch.setattr(Store, "_append_audit", staticmethod(slow))


# ---- the exit ---------------------------------------------------------------------------------
ENDS_JUST_AFTER = """
import sys, time, fm_lab
from fm_lab.store import Store
W = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "w"}}}}
if sys.argv[3] == "slow":
    real = Store._append_audit
    def slow(con, entries):
        time.sleep(1.0)
        real(con, entries)
    Store._append_audit = staticmethod(slow)
fm_lab.run(W, store=Store(sys.argv[1], group_delay_s=0))  # the file is there
print(fm_lab.run(W, store=Store(sys.argv[1], group_delay_s=0.05)).run_id, flush=True)
time.sleep(float(sys.argv[2]))  # the background thread is storing it as the script ends
"""


@pytest.mark.parametrize("sleep_s, storing", [("0.055", "fast"), ("0.065", "fast"),
                                              ("0.3", "slow")])
def test_an_exit_while_the_background_stores_waits_for_it_and_stores_the_run(
        tmp_path: Path, sleep_s: str, storing: str) -> None:
    """DuckDB's own exit hooks would interrupt the store (a SIGABRT as the daemon thread is
    torn down inside DuckDB); the exit's storing runs before them, after the thread's."""
    for i in range(3 if storing == "fast" else 1):
        path = tmp_path / f"s{i}.duckdb"
        done = subprocess.run([sys.executable, "-c", ENDS_JUST_AFTER, str(path), sleep_s,
                               storing], capture_output=True, text=True, timeout=120, env=ENV)
        assert done.returncode == 0, done.stderr[-2000:]
        assert not _journals(path), done.stderr[-2000:]
        assert done.stdout.strip() in set(Store(path, read_only=True).runs()["run_id"])


# ---- forks ------------------------------------------------------------------------------------
_PATH: list[Path] = []


def _run_in_child(n: int) -> str:
    try:
        return fm_lab.run(CHAIN, {"n": n}, store=Store(_PATH[0])).run_id
    except Exception as exc:  # said, for the assertion's message
        return f"error: {type(exc).__name__}: {exc}"


def test_runs_of_a_fork_pool_are_seen_by_the_parent(tmp_path: Path) -> None:
    """A fork pool's workers end with os._exit or SIGTERM (no exit hooks): a forked child
    stores each run at its end, as before."""
    _PATH[:] = [tmp_path / "s.duckdb"]
    _made(_PATH[0])
    store = Store(_PATH[0])
    with mp.get_context("fork").Pool(2) as pool:  # its end terminates the workers
        ids = pool.map(_run_in_child, range(4))
    assert not [i for i in ids if i.startswith("error")], ids
    seen = set(store.runs()["run_id"])
    assert set(ids) <= seen, (set(ids) - seen, _journals(_PATH[0]))
    assert set(ids) <= set(Store(_PATH[0], read_only=True).runs()["run_id"])


DIES_AFTER_A_RUN = """
import os, sys, fm_lab
store = fm_lab.Store(sys.argv[1], group_delay_s=60)
print(fm_lab.run({"id": "w", "nodes": {"a": {"type": "template", "config": {
    "template": "w"}}}}, store=store).run_id, flush=True)
os._exit(0)
"""


def test_a_store_already_open_takes_in_a_dead_process_finished_runs(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    _made(path)
    store = Store(path)  # opened (and recovered) before the other process ran
    done = subprocess.run([sys.executable, "-c", DIES_AFTER_A_RUN, str(path)],
                          capture_output=True, text=True, timeout=120, env=ENV, check=True)
    assert len(_journals(path)) == 1
    assert store.run_status(done.stdout.strip()) == "succeeded"
    assert not _journals(path)


def _read_later(target: Any) -> None:
    time.sleep(2.0)  # the parent's storing is over by now
    if isinstance(target, Store):
        target.runs()
    else:
        fm_lab.run(CHAIN, {"n": 9}, store=Store(target, group_delay_s=0))
        Store(target, group_delay_s=0).runs()


@pytest.mark.parametrize("target", ["same_store", "new_store"])
def test_a_fork_while_a_group_is_stored_waits_for_it(
        tmp_path: Path, slow_group: None, target: str) -> None:
    """Else the child inherits a file DuckDB has attached (every open then fails) and locks
    held by a thread it does not have (it hangs)."""
    path = tmp_path / "s.duckdb"
    store = Store(path, group_delay_s=0.01)
    fm_lab.run(CHAIN, {"n": 1}, store=store)
    time.sleep(0.3)  # the background thread is inside the group's transaction
    child = mp.get_context("fork").Process(
        target=_read_later, args=(store if target == "same_store" else path,))
    child.start()
    child.join(60)
    alive = child.is_alive()
    if alive:
        child.kill()
        child.join()
    assert not alive, "the forked child hangs"
    assert child.exitcode == 0


# ---- processes meeting ------------------------------------------------------------------------
KILLED_WITH_RUNS = """
import os, sys, fm_lab
W = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "w"}}}}
fm_lab.run(W, store=fm_lab.Store(sys.argv[1], group_delay_s=0))  # the file is there
store = fm_lab.Store(sys.argv[1], group_delay_s=60)
for _ in range(8):
    fm_lab.run(W, store=store)
os._exit(0)
"""
OPENER = """
import os, sys, time
import fm_lab
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
fm_lab.Store(sys.argv[1])
print("opened", flush=True)
"""


def test_two_processes_recovering_at_once_do_not_wait_for_each_other(tmp_path: Path) -> None:
    """Each holds a dead process's journal while it ingests it: neither waits for the
    other's (an ingest waits for no other process's runs). Waiting would take the lock
    timeout, ten minutes, per journal: the openers would not end before the test's guard."""
    env = {**ENV, "FM_LAB_LOCK_TIMEOUT_S": "600"}
    path, go = tmp_path / "s.duckdb", tmp_path / "go"
    subprocess.run([sys.executable, "-c", KILLED_WITH_RUNS, str(path)], check=True, env=env,
                   timeout=120)
    assert len(_journals(path)) == 8
    openers = [subprocess.Popen([sys.executable, "-c", OPENER, str(path), str(go)],
                                stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    time.sleep(2)  # both have imported fm_lab
    go.touch()
    assert [p.communicate(timeout=300)[0].strip() for p in openers] == ["opened"] * 2
    assert not _journals(path)
    assert len(Store(path).runs()) == 9


def test_a_reader_waits_the_lock_timeout_once_for_runs_and_file_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait for other processes' runs and the wait for the file share one lock timeout
    (a clock the test moves: the runs' wait takes all of it, so the file gets none)."""
    import types

    from fm_lab.store import duckdb_store
    from fm_lab.store.errors import StoreLockedError

    path = tmp_path / "s.duckdb"
    _made(path)
    store = Store(path, lock_timeout_s=6)
    moved = [0.0]
    clock = types.SimpleNamespace(**{n: getattr(time, n) for n in ("time", "sleep")},
                                  monotonic=lambda: time.monotonic() + moved[0])
    given: list[float] = []

    def waits_it_all(journal_dir: Path, mine: Any, timeout_s: float) -> bool:
        moved[0] += timeout_s
        return False

    def busy(self: Store, timeout_s: float) -> Any:
        given.append(timeout_s)
        raise StoreLockedError(self.path, "another process")

    monkeypatch.setattr(duckdb_store, "time", clock)
    monkeypatch.setattr(duckdb_store.group_wait, "wait_for_others", waits_it_all)
    monkeypatch.setattr(Store, "_open", busy)
    with pytest.raises(StoreLockedError):
        store.runs()
    assert given == [0.0]  # not another 6 s for the file


# ---- read-only stores and readers -------------------------------------------------------------
def test_a_reader_without_write_access_to_the_journals_can_read(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    run = fm_lab.run(CHAIN, {"n": 0}, store=Store(path, group_delay_s=0))
    other = Path(f"{path}.journal") / "01aaaaaaaaaaaaaaaaaa.journal"  # another user's run
    other.write_bytes(b"")
    if os.geteuid() != 0:
        other.chmod(0o200)  # not readable
    elif subprocess.run(["chattr", "+i", str(other)], capture_output=True).returncode:
        pytest.skip("root, and no chattr here")  # (root may write any file)
    try:
        reader = Store(path, read_only=True)
        assert reader.run_status(run.run_id) == "succeeded"
        assert len(reader.runs()) == 1
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(other)], capture_output=True)


def test_reads_in_a_read_only_hold_do_not_wait_for_a_writer_here(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    _made(path)
    reader = Store(path, read_only=True)
    writer = Store(path, group_delay_s=60)
    with reader.hold():
        fm_lab.run(CHAIN, {"n": 1}, store=writer)  # queued: the file is open read-only here
        opened = []
        real_open = Store._open

        def spied(self: Store, timeout_s: float) -> Any:
            opened.append(self)
            return real_open(self, timeout_s)

        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(Store, "_open", spied)
            assert writer.store_groups(wait=False) is False  # later: no wait for the reader
            assert len(reader.runs()) == 1  # reads without the queued run
        assert writer not in opened  # the writer never tried (and waited for) the file
        assert run_groups.pending(writer.path)
    assert len(Store(path).runs()) == 2


HOLDS_READ_ONLY = """
import sys, time, fm_lab
store = fm_lab.Store(sys.argv[1], read_only=True)
with store.hold():
    store.runs()
    print("holding", flush=True)
    time.sleep(60)
"""


def test_a_read_only_read_goes_on_when_the_writer_cannot_store(tmp_path: Path) -> None:
    """Another process reads the file (a shared lock): the writable store here cannot store
    its queue, but a read-only read can still read."""
    path = tmp_path / "s.duckdb"
    _made(path)
    fm_lab.run(CHAIN, {"n": 1}, store=Store(path, group_delay_s=60, lock_timeout_s=1))
    other = subprocess.Popen([sys.executable, "-c", HOLDS_READ_ONLY, str(path)],
                             stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "holding"
        assert len(Store(path, read_only=True, lock_timeout_s=1).runs()) >= 1
    finally:
        other.kill()
        other.communicate()


# ---- a deleted folder, a hold -----------------------------------------------------------------
def test_runs_queued_when_the_folder_is_deleted_are_dropped_not_resurrected(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "gone"
    store = Store(folder / "s.duckdb", group_delay_s=60)
    fm_lab.run(CHAIN, {"n": 1}, store=store)
    shutil.rmtree(folder)
    store.close()  # no "damaged store" error: the run's journal is gone, the run with it
    assert "was deleted before the run was stored" in caplog.text
    assert not run_groups.pending(store.path)  # nothing left for the background to retry
    assert Store(folder / "s.duckdb").runs().empty  # a new store there starts empty


def test_the_background_thread_leaves_a_hold_alone(tmp_path: Path) -> None:
    from fm_lab.store import group_timer

    store = Store(tmp_path / "s.duckdb")
    fm_lab.run(CHAIN, {"n": 0}, store=store)  # schedules the background store (50 ms)
    with store.hold():
        fm_lab.run(CHAIN, {"n": 1}, store=store)  # queued until the hold ends
        assert store.store_groups(wait=False)  # done with: the hold's end stores them
        assert run_groups.pending(store.path)
        # the scheduled store finds the hold, and is not scheduled again (no polling)
        for _ in range(3000):  # (a guard for a loaded machine, not a timing)
            if store.path not in group_timer._due:
                break
            time.sleep(0.01)
        assert store.path not in group_timer._due
    assert len(store.runs()) == 2


# ---- a second review: the exit, forks and liveness again ----------------------------------------
EXIT_HANGS = """
import sys, threading, time, fm_lab
from fm_lab.store import Store
W = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "w"}}}}
s1 = Store(sys.argv[1], group_delay_s=60)
s2 = Store(sys.argv[1], group_delay_s=60)
fm_lab.run(W, store=s1)           # queued; the due entry is s1.store_groups
held = threading.Event()
def batch():                      # a daemon thread in a long hold on s1
    with s1.hold():
        held.set()
        time.sleep(3600)
threading.Thread(target=batch, daemon=True).start()
held.wait()
fm_lab.run(W, store=s2)           # queued via s2 (not held); s1's due entry stays
print("main done", flush=True)
"""


def test_exit_does_not_hang_on_a_daemon_threads_hold(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    _made(path)
    code, _out, err = _ends(EXIT_HANGS, str(path))
    assert code == 0, err[-2000:]


HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_the_background_store_waits_for_no_file_another_process_has(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It finds the file busy at once and tries again later: a fork, which waits for a
    store under way, never waits the lock timeout for it."""
    from fm_lab.store import duckdb_store

    path = tmp_path / "s.duckdb"
    _made(path)
    store = Store(path, group_delay_s=60, lock_timeout_s=600)
    fm_lab.run(CHAIN, {"n": 1}, store=store)
    given: list[float] = []
    real_open = Store._open

    def spied(self: Store, timeout_s: float) -> Any:
        given.append(timeout_s)
        return real_open(self, timeout_s)

    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "600"],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(Store, "_open", spied)
        assert store.store_groups(wait=False) is False  # busy: tried again later
    finally:
        holder.kill()
        holder.communicate()
    assert given and max(given) <= duckdb_store.BACKGROUND_FILE_WAIT_S
    assert run_groups.pending(store.path)
    monkeypatch.undo()
    assert len(store.runs()) == 2


FORK_IN_LOG = """
import logging, os, shutil, sys, time, fm_lab
from pathlib import Path
from fm_lab.store import Store
class Forking(logging.Handler):
    def emit(self, record):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print("forked", flush=True)
logging.getLogger("fm_lab").addHandler(Forking())
folder = Path(sys.argv[1])
store = Store(folder / "s.duckdb", group_delay_s=0.3)
fm_lab.run({"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "w"}}}},
           store=store)
shutil.rmtree(folder)             # the background store logs a warning (journal deleted)
time.sleep(2)
print("done", flush=True)
"""


def test_a_fork_on_the_background_thread_does_not_deadlock(tmp_path: Path) -> None:
    _code, out, err = _ends(FORK_IN_LOG, str(tmp_path / "gone"))
    assert "forked" in out and "done" in out, (out, err[-1500:])


LIVE_ELSEWHERE = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b'{"seq": 1, "k": "start"}\\n')   # a live run: no end record
print("locked", flush=True)
time.sleep(30)
"""


def test_a_run_live_elsewhere_stays_live_while_a_group_is_stored_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.duckdb"
    _made(path)
    store = Store(path, group_delay_s=0.05)
    live = "01aaaaaaaaaaaaaaaaab"
    other = subprocess.Popen([sys.executable, "-c", LIVE_ELSEWHERE,
                              str(store.journal_path(live))], stdout=subprocess.PIPE,
                             text=True, env=ENV)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "locked"
        assert store.run_is_live(live)
        real = Store._append_audit

        def slow(con: Any, entries: Any) -> None:
            time.sleep(1.0)
            real(con, entries)

        monkeypatch.setattr(Store, "_append_audit", staticmethod(slow))
        fm_lab.run(CHAIN, {"n": 1}, store=store)  # stored by the background thread in 50 ms
        time.sleep(0.4)  # ... which is inside the group's transaction now
        assert store.run_is_live(live), "a run live in another process reported not live"
    finally:
        other.kill()
        other.communicate()


DAEMON_LOOP = """
import sys, threading, time, fm_lab
from fm_lab.store import Store
W = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "w{{ inputs.n }}"}}}}
store = Store(sys.argv[1], group_delay_s=0.05)
fm_lab.run(W, {"n": 0}, store=store)
def loop():
    n = 1
    while True:
        fm_lab.run(W, {"n": n}, store=store)
        n += 1
threading.Thread(target=loop, daemon=True).start()
time.sleep(0.5)
"""


def test_runs_finished_by_a_daemon_thread_during_the_exit_are_stored(tmp_path: Path) -> None:
    from fm_lab.store.journal import ends_run

    path = tmp_path / "s.duckdb"
    _made(path)
    subprocess.run([sys.executable, "-c", DAEMON_LOOP, str(path)], capture_output=True,
                   timeout=120, env=ENV)
    finished = [p.name for p in Path(f"{path}.journal").glob("*.journal") if ends_run(p)]
    seen = len(Store(path, read_only=True).runs(limit=None))
    recovered = len(Store(path).runs(limit=None)) - seen  # a writable open takes them in
    # before 42873d8: at most the one run the exit interrupted
    assert len(finished) <= 1, (f"{len(finished)} finished runs left in journals; a read-only "
                                f"reader misses them ({recovered} recovered by a writable open)")


def _child_opens(path: str, q: Any) -> None:
    try:
        fm_lab.run(CHAIN, {"n": 8}, store=Store(path, group_delay_s=0))
        q.put("ok")
    except Exception as exc:
        q.put(f"{type(exc).__name__}: {exc}")


def test_a_child_forked_inside_a_hold_is_told_why_it_cannot_open_the_store(
        tmp_path: Path) -> None:
    """DuckDB keeps a process-wide registry of attached files, inherited by a fork: the file
    the parent had attached cannot be attached again in the child (not a damaged store)."""
    path = tmp_path / "s.duckdb"
    _made(path)
    store = Store(path)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    with store.hold():
        child = ctx.Process(target=_child_opens, args=(str(path), q))
        child.start()
    said = q.get(timeout=120)
    child.join(60)
    assert said.startswith("StoreError: ") and "was open in the process this one was " \
        "forked from" in said and "'spawn'" in said, said


# ---- a third review: values a group's Arrow path refused, big groups and lines, busy peers -----
def _spanning(x: str) -> str:
    from fm_lab.tracing.spans import span

    for i in range(5):
        with span(f"s{i}", kind="tool", resource_id=42) as each:  # an int where text goes
            each.output = i
    return x


def test_a_group_past_the_arrow_threshold_takes_what_a_single_run_takes(
        tmp_path: Path) -> None:
    """64 runs of 6 spans: the group's spans go in through Arrow, which refused an int in a
    text column where DuckDB's list parameters cast it."""
    fm_lab.register_function(_spanning, name="spanning_int_ids")
    flow = {"id": "sp", "nodes": {"a": {"type": "code", "config": {
        "function": "spanning_int_ids", "args": {"x": "{{ inputs.n }}"}}}}}
    store = Store(tmp_path / "s.duckdb", group_delay_s=60)
    ids = [fm_lab.run(flow, {"n": str(i)}, store=store).run_id for i in range(64)]
    assert set(ids) <= set(fm_lab.runs(limit=None, store=store)["run_id"])
    ids_stored = store.sql("select distinct resource_id from spans where kind = 'tool'")
    assert ids_stored["resource_id"].tolist() == ["42"]


HOLDS_THE_FILE = """
import sys, time
from fm_lab.store import Store
with Store(sys.argv[1]).hold():
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_runs_ending_while_another_process_holds_the_file_all_go_in(tmp_path: Path) -> None:
    """The group cannot be stored meanwhile: it grows to its cap times OVERFULL (past the
    Arrow threshold), then runs go alone; all are stored once the file is free."""
    path = tmp_path / "s.duckdb"
    _made(path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDS_THE_FILE, str(path), "4"],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store = Store(path, lock_timeout_s=0.01)
        ids = [fm_lab.run(CHAIN, {"n": i}, store=store).run_id for i in range(300)]
    finally:
        holder.communicate(timeout=60)
    store.lock_timeout_s = 30
    assert set(ids) <= set(fm_lab.runs(limit=None, store=store)["run_id"])


def test_the_end_of_a_journal_is_found_behind_a_huge_last_line(tmp_path: Path) -> None:
    from fm_lab.store.journal import encode_record, ends_run

    def line(record: dict[str, Any]) -> bytes:
        import zlib

        body = encode_record(record)
        return b"%08x %s\n" % (zlib.crc32(body), body)

    big = "x" * (8 * 1024 * 1024)
    start = line({"k": "start", "seq": 1})
    ended, running = tmp_path / "ended.journal", tmp_path / "running.journal"
    ended.write_bytes(start + line({"k": "run", "seq": 2, "outputs": {"a": big}}))
    running.write_bytes(start + line({"k": "node", "seq": 2, "output": big}))
    assert ends_run(ended) and not ends_run(running)
    assert not ends_run(tmp_path / "missing.journal")


BUSY_PEER = """
import sys, threading, time, fm_lab
from fm_lab.store import Store
store = Store(sys.argv[1])
flow = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "{{ inputs.n }}"}}}}
stop = time.monotonic() + float(sys.argv[2])
reads = []
def work(k):
    i = 0
    while time.monotonic() < stop:
        fm_lab.run(flow, {"n": f"{k}-{i}"}, store=store)
        i += 1
def read():
    while time.monotonic() < stop:
        t = time.monotonic()
        fm_lab.runs(store=store)
        reads.append(time.monotonic() - t)
        time.sleep(0.02)
threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
threads.append(threading.Thread(target=read))
for t in threads: t.start()
for t in threads: t.join()
print(len(reads), flush=True)
"""


def test_two_busy_processes_do_not_wait_out_each_others_lock_timeout(tmp_path: Path) -> None:
    """Each reads while its threads run short runs: a read waiting for the other's queued
    runs held its own store's lock, which its background thread needed to store the runs the
    other was waiting for. Waiting would take the lock timeout, ten minutes, per read: the
    processes would not end before the test's guard."""
    path = tmp_path / "s.duckdb"
    _made(path)
    env = {**ENV, "FM_LAB_LOCK_TIMEOUT_S": "600"}
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_PEER, str(path), "4"],
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    reads = [int(p.communicate(timeout=300)[0]) for p in procs]
    assert min(reads) > 0, reads
