"""A store path that is not a healthy DuckDB file is a StoreCorruptError naming it; a store
file deleted under a suspended run leaves a trace that 'no run' errors report."""

from __future__ import annotations

import os

import pytest

import fm_lab
from fm_lab.store.errors import RunNotFoundError, StoreCorruptError

FLOW = {"id": "s", "nodes": {"a": {"type": "template", "config": {"template": "hi"}}}}
WAITS = {
    "id": "waits",
    "nodes": {"ask": {"type": "approval", "config": {"message": "ok?"}}},
}


def _open(path):
    store = fm_lab.Store(path)
    try:
        return store.runs()
    finally:
        store.close()


@pytest.mark.parametrize("content", [b"", b"not a database\n" * 100, os.urandom(8192),
                                     b"SQLite format 3\x00" + bytes(4080)])
def test_a_file_that_is_not_duckdb(tmp_path, content):
    path = tmp_path / "bad.duckdb"
    path.write_bytes(content)
    with pytest.raises(StoreCorruptError, match="is not a DuckDB file") as caught:
        _open(path)
    assert str(path) in str(caught.value) and "move it aside" in str(caught.value)


def test_a_directory_is_not_a_store(tmp_path):
    with pytest.raises(StoreCorruptError, match="is a directory"):
        fm_lab.Store(tmp_path)


def test_a_truncated_store(tmp_path):
    path = tmp_path / "t.duckdb"
    store = fm_lab.Store(path)
    fm_lab.run(FLOW, store=store)
    store.close()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(StoreCorruptError, match="move it aside"):
        _open(path)


def test_a_query_error_is_not_corruption(tmp_path):
    store = fm_lab.Store(tmp_path / "q.duckdb")
    with pytest.raises(Exception) as caught:
        store.sql("select * from read_parquet('nowhere.parquet')")
    assert not isinstance(caught.value, StoreCorruptError)


def test_a_deleted_store_file_is_reported_not_silently_empty(tmp_path):
    path = tmp_path / "gone.duckdb"
    store = fm_lab.Store(path)
    run = fm_lab.run(WAITS, store=store)
    assert run.status == "suspended"
    store.close()
    path.unlink()

    fresh = fm_lab.Store(path)
    with pytest.raises(RunNotFoundError, match="the store file does not exist") as caught:
        fm_lab.resume(run.run_id, {"approved": True}, store=fresh)
    assert "one was created" in str(caught.value)
    assert not path.exists()  # asking did not create an empty file

    fm_lab.run(FLOW, store=fresh)  # a new file is made (with a warning in the log)
    with pytest.raises(RunNotFoundError, match="after the previous one") as caught:
        fm_lab.get_run(run.run_id, store=fresh)
    assert "disappeared" in str(caught.value)


def test_an_unknown_run_in_a_healthy_store_is_plain(tmp_path):
    store = fm_lab.Store(tmp_path / "h.duckdb")
    fm_lab.run(FLOW, store=store)
    with pytest.raises(RunNotFoundError) as caught:
        fm_lab.get_run("nope", store=store)
    assert str(caught.value) == f"no run 'nope' in {store.path}"


def _with_wal(tmp_path, name):
    path = tmp_path / name
    store = fm_lab.Store(path)
    fm_lab.run(FLOW, store=store)
    store.close()
    wal = tmp_path / f"{name}.wal"
    assert wal.exists(), "a short run's commit stays in the write-ahead log"
    return path, wal


def test_a_damaged_write_ahead_log_is_named_and_kept(tmp_path):
    path, wal = _with_wal(tmp_path, "w.duckdb")
    damaged = bytearray(wal.read_bytes())
    damaged[len(damaged) // 2: len(damaged) // 2 + 64] = b"\xff" * 64
    wal.write_bytes(bytes(damaged))
    before = path.read_bytes()
    with pytest.raises(StoreCorruptError, match="damaged write-ahead log") as caught:
        _open(path)
    assert f"{path}.wal" in str(caught.value) and "move that file aside" in str(caught.value)
    assert wal.read_bytes() == bytes(damaged) and path.read_bytes() == before  # nothing lost
    wal.rename(tmp_path / "w.duckdb.wal.damaged")
    assert _open(path).empty  # as the user was told: the store as of its last checkpoint


def test_a_write_ahead_log_of_another_store_is_refused(tmp_path):
    path, _ = _with_wal(tmp_path, "a.duckdb")
    _, other_wal = _with_wal(tmp_path, "b.duckdb")
    (tmp_path / "a.duckdb.wal").write_bytes(other_wal.read_bytes())
    with pytest.raises(StoreCorruptError, match="write-ahead log from another copy"):
        _open(path)
