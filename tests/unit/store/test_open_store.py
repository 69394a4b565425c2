"""``fm_lab.connect(target)`` picks the store by URL scheme and refuses what it does not know,
without ever taking a URL for a file name."""

from __future__ import annotations

from pathlib import Path

import pytest

import fm_lab
from fm_lab.store import MemoryStore, Store, StoreError, UnsupportedStoreError, open_store
from fm_lab.store.base import (
    SQL,
    has,
    journal_dir,
    require,
    shard_dir,
    sql_store,
)
from fm_lab.store.urls import redacted, scheme_of


@pytest.mark.parametrize("target", ["mysql://ann:s3cret@db.example/fm",
                                    "sqlite://db/fm", "s3://bucket/x.duckdb", "Redis://h/0"])
def test_an_unknown_scheme_is_refused_and_nothing_is_created(
        target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedStoreError, match="no fm_lab store for") as caught:
        fm_lab.connect(target)
    assert "s3cret" not in str(caught.value)  # a password never reaches a message
    assert "memory://" in str(caught.value) and "duckdb://" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # no ./postgresql:/ folder, no file


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgres_server_that_is_not_there_is_one_clear_error(
        scheme: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"{scheme}://ann:s3cret@/fm?host={tmp_path / 'no-server'}"  # a socket that is not there
    with pytest.raises(StoreError, match="cannot open the PostgreSQL store") as caught:
        open_store(url)
    message = str(caught.value)
    assert "s3cret" not in message and "ann:***@" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_paths_and_duckdb_urls_open_a_duckdb_file(tmp_path: Path) -> None:
    plain = open_store(tmp_path / "a.duckdb")
    by_url = open_store(f"duckdb://{tmp_path / 'b.duckdb'}")
    by_file_url = open_store(f"file://{tmp_path / 'c.duckdb'}")
    for store, name in ((plain, "a"), (by_url, "b"), (by_file_url, "c")):
        assert isinstance(store, Store) and store.path == str(tmp_path / f"{name}.duckdb")
        assert has(store, SQL) and journal_dir(store) == Path(store.path + ".journal")
        assert shard_dir(store) is not None


def test_memory_targets(tmp_path: Path) -> None:
    duck = open_store(":memory:")
    assert isinstance(duck, Store) and duck.memory and has(duck, SQL)
    assert journal_dir(duck) is None and shard_dir(duck) is None  # nothing shared
    assert isinstance(open_store("duckdb://:memory:"), Store)
    plain = open_store("memory://scratch")
    assert isinstance(plain, MemoryStore) and plain.path == "memory://scratch"
    assert not has(plain, SQL)
    with pytest.raises(UnsupportedStoreError, match="read-only"):
        open_store("memory://", read_only=True)


def test_a_file_url_on_another_host_is_refused() -> None:
    with pytest.raises(UnsupportedStoreError, match="another host"):
        open_store("file://server/share/fm.duckdb")


def test_what_needs_sql_says_so_on_a_store_without_it() -> None:
    store = MemoryStore()
    with pytest.raises(UnsupportedStoreError, match=r"fm_lab\.traces needs a store with 'sql'"):
        sql_store(store, "fm_lab.traces")
    with pytest.raises(UnsupportedStoreError, match="needs a store with 'sql'"):
        fm_lab.traces(store=store)
    with pytest.raises(ValueError, match="unknown store capability 'sqll'"):
        require(store, "sqll", "x")


def test_scheme_detection_and_redaction() -> None:
    assert scheme_of("C:/data/fm.duckdb") is None  # a drive letter is not a scheme
    assert scheme_of(Path("x://y")) is None
    assert scheme_of("DuckDB://x") == "duckdb"
    assert redacted("postgresql://ann:pw@h:5432/db") == "postgresql://ann:***@h:5432/db"
    assert redacted("postgresql://h/db") == "postgresql://h/db"
