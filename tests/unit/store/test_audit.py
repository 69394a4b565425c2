"""The audit log's hash chain, its rows on both stores, and the guard on fm_lab.sql()."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import fm_lab
from fm_lab.store import RunStore, Store, open_store
from fm_lab.store.audit import AuditChainError, chain, entry, verify
from fm_lab.store.sql_guard import AuditLogReadOnlyError


def _entries(n: int) -> list:
    return [entry("run.start", f"user{i}", run_id=f"r{i}", after={"n": i, "ok": [1.5, None]},
                  at=1_700_000_000.123456 + i) for i in range(n)]


def test_a_chain_verifies_and_says_which_row_was_changed() -> None:
    rows = chain(_entries(4), None)
    assert [r["seq"] for r in rows] == [1, 2, 3, 4]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert verify(rows) == []
    assert chain(_entries(1), (4, rows[-1]["hash"]))[0]["seq"] == 5  # appended after a head

    edited = [dict(r) for r in rows]
    edited[2]["actor"] = "mallory"
    assert verify(edited) == ["seq 3: its content does not match its hash (edited)"]  # type: ignore[arg-type]

    removed = rows[:1] + rows[2:]
    assert any("seq 3 follows seq 1" in p for p in verify(removed))

    rehashed = [dict(r) for r in rows]  # edited and re-hashed: the next row no longer fits
    rehashed[1]["hash"] = "f" * 64
    assert any("seq 3: prev_hash" in p for p in verify(rehashed))  # type: ignore[arg-type]


@pytest.fixture
def store(each_store: RunStore) -> RunStore:
    """Each kind of store (root conftest)."""
    return each_store


def test_both_stores_number_chain_and_filter_entries(store: RunStore) -> None:
    store.append_audit(_entries(3))
    store.append_audit([entry("run.cancel", "user1", run_id="r1")])
    rows = store.audit_rows()
    assert [r["seq"] for r in rows] == [1, 2, 3, 4] and verify(rows) == []
    assert [r["seq"] for r in store.audit_rows(run_id="r1")] == [2, 4]
    assert [r["seq"] for r in store.audit_rows(actor="user1", action="run.cancel")] == [4]
    assert [r["seq"] for r in store.audit_rows(limit=2)] == [3, 4]  # the newest, oldest first
    since = rows[2]["acted_at"]
    assert [r["seq"] for r in store.audit_rows(since=since)] == [3, 4]
    frame = fm_lab.audit(store=store, verify=True)
    assert frame["after"].iloc[0] == {"n": 0, "ok": [1.5, None]}
    assert list(fm_lab.audit(store=store, limit=1)["action"]) == ["run.cancel"]


def test_an_edit_of_the_duckdb_file_breaks_the_chain(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FM_LAB_USER", "alice")
    path = tmp_path / "audit.duckdb"
    store = Store(path)
    run = fm_lab.run({"id": "one", "nodes": {"a": {"type": "template",
                                                    "config": {"template": "x"}}}}, store=store)
    fm_lab.delete_run(run.run_id, store=store)
    assert list(fm_lab.audit(store=store, verify=True)["action"]) == ["run.start", "run.delete"]
    store.close()

    with duckdb.connect(str(path)) as con:  # someone with the file and any DuckDB client
        con.execute("update audit_log set actor = 'bob' where seq = 1")
    reopened = Store(path)
    with pytest.raises(AuditChainError, match="seq 1: its content does not match") as raised:
        fm_lab.audit(store=reopened, verify=True)
    assert "\n" not in str(raised.value)
    assert fm_lab.audit(store=reopened)["actor"].tolist() == ["bob", "alice"]  # still readable
    reopened.close()


@pytest.mark.parametrize("statement", [
    "update audit_log set actor = 'x'",
    "DELETE FROM main.audit_log",
    "truncate audit_log",
    "drop table audit_log",
    "alter table audit_log add column x int",
    "insert into audit_log select * from audit_log",
    'create or replace table "AUDIT_LOG" as select 1',
    "explain analyze delete from audit_log",
    "select 1; delete from audit_log",
])
def test_sql_refuses_to_change_the_audit_log(statement: str) -> None:
    store = Store(":memory:")
    store.append_audit(_entries(2))
    with pytest.raises(AuditLogReadOnlyError, match="append-only"):
        fm_lab.sql(statement, store=store)
    assert len(store.audit_rows()) == 2 and verify(store.audit_rows()) == []


def test_sql_still_reads_the_audit_log_and_writes_other_tables() -> None:
    store = Store(":memory:")
    store.append_audit(_entries(2))
    assert fm_lab.sql("select count(*) as n from audit_log", store=store)["n"][0] == 2
    assert not fm_lab.sql("describe audit_log", store=store).empty
    fm_lab.sql("create table notes (audit_log_seq int)", store=store)  # only mentions it
    fm_lab.sql("insert into notes values (1)", store=store)


def test_migration_8_gives_runs_of_older_files_their_workflow_hash(tmp_path: Path) -> None:
    from fm_lab.store import schema

    path = tmp_path / "v6.duckdb"
    with duckdb.connect(str(path)) as con:  # a file as fm_lab wrote it before migration 8
        con.execute("create table meta (key varchar primary key, value varchar)")
        con.execute("insert into meta values ('schema_version', '6'), "
                    "('schema_versions', '1,2,3,4,5,6')")
        for number, sql in schema.MIGRATIONS:
            if number <= 6:
                con.execute(sql)
        con.execute("insert into workflows (workflow_id, version, hash, spec) "
                    "values ('w', 1, 'abc', '{}')")
        con.execute("insert into runs (run_id, workflow_id, workflow_version, status) "
                    "values ('old', 'w', 1, 'succeeded')")
    reader = Store(path, read_only=True)  # a reader changes nothing and still answers
    assert reader.runs()[["started_by", "workflow_hash"]].values.tolist() == [[None, None]]
    assert reader.audit_rows() == [] and reader.workflows()["saved_by"].isna().all()
    reader.close()
    store = Store(path)
    assert store.runs()[["started_by", "workflow_hash"]].values.tolist() == [[None, "abc"]]
    store.append_audit(_entries(1))
    assert verify(store.audit_rows()) == []
    store.close()


def test_postgres_refuses_changes_to_the_audit_log_whoever_connects(pg_url: str) -> None:
    import psycopg

    store = open_store(pg_url)
    store.append_audit([entry("run.cancel", "ann", run_id="r1")])
    with pytest.raises(AuditLogReadOnlyError):  # through fm_lab
        store.sql("delete from audit_log")
    with psycopg.connect(pg_url, autocommit=True) as conn:  # around it: the server says no
        for statement in ("update audit_log set actor = 'eve'", "delete from audit_log",
                          "truncate audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
    rows = store.audit_rows()
    assert [(r["actor"], r["action"]) for r in rows] == [("ann", "run.cancel")]
    assert verify(rows) == []
    store.close()
