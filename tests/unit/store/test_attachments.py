"""Store files are attached to one DuckDB instance per process while in use."""

import itertools
import subprocess
import sys

import duckdb
import pytest

import fm_lab
from fm_lab.store import Store, StoreLockedError, attachments

WF = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "x"}}}}


def test_two_stores_on_one_file_share_it_while_one_holds_it(tmp_path):
    path = tmp_path / "s.duckdb"
    first, second = Store(path), Store(path)
    with first.hold():
        fm_lab.run(WF, store=second)  # would be a "file handle conflict" without sharing
        assert len(first.runs()) == 1
    assert str(path) not in attachments._attached  # the last lease detached it


def test_a_released_file_is_free_for_another_process(tmp_path):
    path = tmp_path / "s.duckdb"
    store = Store(path, group_delay_s=0)  # stored at the run's end: the file is released
    fm_lab.run(WF, store=store)
    script = f"import duckdb; print(duckdb.connect({str(path)!r}).sql('from runs').shape)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert "(1," in out.stdout


def test_files_with_the_same_name_get_their_own_catalog(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two = Store(tmp_path / "a" / "fm.duckdb"), Store(tmp_path / "b" / "fm.duckdb")
    fm_lab.run(WF, store=one)
    with one.hold(), two.hold():
        assert len(one.runs()) == 1
        assert two.runs().empty
        names = {one.sql("select current_database() as d")["d"].item(),
                 two.sql("select current_database() as d")["d"].item()}
        assert names == {"fm", "fm_2"}


def test_a_writer_waits_for_a_read_only_store_of_this_process(tmp_path):
    path = tmp_path / "s.duckdb"
    fm_lab.run(WF, store=Store(path, group_delay_s=0))
    reader = Store(path, read_only=True)
    with reader.hold():
        with pytest.raises(StoreLockedError, match="held by a read-only Store in this process"):
            Store(path, lock_timeout_s=0.05).runs()
        run = fm_lab.run(WF, store=Store(path, lock_timeout_s=0.05, group_delay_s=0))  # busy
        assert run.status == "succeeded"
        assert len(reader.runs()) == 1
    con = duckdb.connect(str(path), read_only=True)  # not yet: nobody opened the file since
    assert con.execute("select count(*) from runs").fetchone() == (1,)
    con.close()
    assert len(Store(path).runs()) == 2  # the next writer ingests the journaled run


def test_a_forked_child_opens_the_file_afresh(tmp_path):
    import multiprocessing

    path = tmp_path / "s.duckdb"
    fm_lab.run(WF, store=Store(path))  # this process's DuckDB instance exists now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_run_and_count, (str(path),)) == 2  # a new instance in the child
    assert len(Store(path).runs()) == 2


def _run_and_count(path: str) -> int:
    store = Store(path)
    fm_lab.run(WF, store=store)
    return len(store.runs())


def _wal(path):
    wal = path.parent / f"{path.name}.wal"
    return wal.stat().st_size if wal.exists() else 0


def test_a_short_run_stays_in_the_wal_and_every_opener_sees_it(tmp_path):
    path = tmp_path / "s.duckdb"
    fm_lab.run(WF, store=Store(path, group_delay_s=0))
    assert str(path) not in attachments._attached
    assert 0 < _wal(path) <= attachments.WAL_CHECKPOINT_BYTES  # detached, not checkpointed
    script = (f"import duckdb; con = duckdb.connect({str(path)!r}, read_only=True); "
              "print(con.sql('select status from runs').fetchall())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert "succeeded" in out.stdout  # another process, read-only, replays the WAL
    assert Store(path, read_only=True).runs()["status"].tolist() == ["succeeded"]


def test_the_wal_is_folded_into_the_file_once_it_passes_the_threshold(tmp_path):
    path = tmp_path / "s.duckdb"
    store = Store(path, group_delay_s=0)
    sizes = []
    for _ in range(12):
        fm_lab.run(WF, store=store)
        sizes.append(_wal(path))
    assert max(sizes) <= attachments.WAL_CHECKPOINT_BYTES * 2  # never grows without bound
    assert any(after < before for before, after in itertools.pairwise(sizes))  # checkpointed
    assert len(store.runs()) == 12


def test_a_process_killed_after_its_run_loses_nothing(tmp_path):
    path = tmp_path / "s.duckdb"
    script = ("import os, fm_lab; "
              f"run = fm_lab.run({WF!r}, store=fm_lab.Store({str(path)!r})); "
              "print(run.run_id, flush=True); os._exit(0)")  # no interpreter shutdown
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    run_id = out.stdout.split()[-1]
    runs = Store(path).runs()
    assert runs["run_id"].tolist() == [run_id] and runs["status"].tolist() == ["succeeded"]


def test_a_process_that_exits_folds_its_wal_into_the_file(tmp_path):
    path = tmp_path / "s.duckdb"
    script = (f"import fm_lab; fm_lab.run({WF!r}, store=fm_lab.Store({str(path)!r}, "
              "group_delay_s=0)); "
              f"import os; print(os.path.getsize({str(path)!r} + '.wal'))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert int(out.stdout.split()[-1]) > 0  # before the exit: in the WAL
    assert _wal(path) == 0  # after it: one file at rest
    assert Store(path).runs()["status"].tolist() == ["succeeded"]


def test_the_exit_leaves_a_wal_alone_when_another_process_has_the_file(tmp_path):
    path = tmp_path / "s.duckdb"
    store = Store(path)
    fm_lab.run(WF, store=store)
    script = (f"import fm_lab; fm_lab.run({WF!r}, store=fm_lab.Store({str(path)!r})); "
              "print('ran', flush=True); input()")  # exits once told to
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ran\n"
    with store.hold():  # this process has the file while the other one exits
        wal = _wal(path)
        child.communicate("\n", timeout=60)
        assert child.returncode == 0
        assert _wal(path) == wal  # its exit could not fold the WAL in, and did not touch it
    assert len(store.runs()) == 2
