"""store.migrate() and `fm-lab store migrate`: versions before and after, what was applied,
and `--check` for deploy pipelines (exit 1 while migrations are pending, nothing applied)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fm_lab.cli import main
from fm_lab.store import Store, open_store, schema
from fm_lab.store.errors import StoreError
from fm_lab.store.migrations import MigrationReport

EVERY = tuple(number for number, _ in schema.MIGRATIONS)


def _old_file(path: Path, upto: int = 6) -> None:
    """A file as an fm_lab from before migration ``upto + 1`` left it."""
    with duckdb.connect(str(path)) as con:
        con.execute("create table meta (key varchar primary key, value varchar)")
        applied = [n for n in EVERY if n <= upto]
        con.execute("insert into meta values ('schema_version', ?), ('schema_versions', ?)",
                    [str(upto), ",".join(map(str, applied))])
        for number, sql in schema.MIGRATIONS:
            if number <= upto:
                con.execute(sql)


def test_a_new_file_gets_every_migration(tmp_path: Path) -> None:
    store = Store(tmp_path / "new.duckdb")
    report = store.migrate()
    assert report == MigrationReport(store=store.path, before=0, after=schema.LATEST_VERSION,
                                     applied=EVERY, pending=(), latest=schema.LATEST_VERSION)
    assert report.up_to_date and "v0 -> v11" in report.describe()
    assert store.migrate() == report  # what this store found and did since it opened
    store.close()
    again = Store(tmp_path / "new.duckdb")
    assert again.migrate().applied == () and again.migrate().before == schema.LATEST_VERSION
    again.close()


def test_an_old_file_is_checked_without_change_then_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _old_file(path)
    reader = Store(path, read_only=True)
    pending = reader.migrate(apply=False)
    assert (pending.before, pending.pending, pending.up_to_date) == (6, (7, 8, 9, 10, 11), False)
    with pytest.raises(StoreError, match="read-only: it cannot be migrated"):
        reader.migrate()
    reader.close()
    unchanged = Store(path, read_only=True).migrate(apply=False)
    assert unchanged.pending == (7, 8, 9, 10, 11)
    store = Store(path)
    assert (store.migrate().before, store.migrate().applied) == (6, (7, 8, 9, 10, 11))
    store.close()


def test_postgres_migrates_once_and_reports(pg_url: str) -> None:
    first: Any = open_store(pg_url)
    report = first.migrate()
    assert (report.before, report.applied, report.pending) == (0, EVERY, ())
    first.close()
    reader: Any = open_store(pg_url, read_only=True)
    assert reader.migrate(apply=False).applied == ()
    assert reader.migrate(apply=False).before == schema.LATEST_VERSION
    reader.close()


def test_the_command_checks_and_migrates(tmp_path: Path, pg_url: str, capsys: Any) -> None:
    path = tmp_path / "old.duckdb"
    _old_file(path)
    assert main(["store", "migrate", str(path), "--check"]) == 1
    assert "migrations 7, 8, 9, 10, 11 pending" in capsys.readouterr().out
    assert main(["store", "migrate", str(path)]) == 0
    assert "v6 -> v11, applied migrations 7, 8, 9, 10, 11; up to date" in capsys.readouterr().out
    assert main(["store", "migrate", str(path), "--check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == []
    missing = tmp_path / "none.duckdb"
    assert main(["store", "migrate", str(missing), "--check"]) == 1
    assert not missing.exists()
    capsys.readouterr()
    secret = "postgresql://postgres:pw-9z@" + pg_url.split("@", 1)[1]  # the server trusts us
    assert main(["store", "migrate", secret]) == 0
    out = capsys.readouterr().out
    assert "pw-9z" not in out and "postgres:***@" in out and "up to date" in out
    assert main(["store", "migrate", secret, "--check"]) == 0
    assert main(["store", "migrate", "memory://x"]) == 1
    assert "has no tables to migrate" in capsys.readouterr().err
