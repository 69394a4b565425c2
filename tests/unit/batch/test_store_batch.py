"""The batch tables' migration (tolerant of a gap in version numbers), the shard views and
the W3C traceparent link."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fm_lab
from fm_lab.store import schema
from fm_lab.store.duckdb_store import Store
from fm_lab.tracing.spans import link_trace, linked_parent, parse_traceparent


def _tables(path) -> set[str]:
    con = duckdb.connect(str(path))
    try:
        return {r[0] for r in con.execute("select table_name from information_schema.tables")
                .fetchall()}
    finally:
        con.close()


def test_new_store_has_batch_tables_and_records_applied_versions(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    store.runs()
    store.close()
    assert {"batches", "batch_items"} <= _tables(tmp_path / "s.duckdb")
    versions = store.sql("select value from meta where key = 'schema_versions'")["value"][0]
    assert versions == ",".join(str(n) for n, _ in schema.MIGRATIONS)


def test_a_migration_landing_below_the_current_version_is_still_applied(tmp_path,
                                                                         monkeypatch):
    path = tmp_path / "gap.duckdb"
    late = max(number for number, _ in schema.MIGRATIONS) - 1  # landed after a newer one
    monkeypatch.setattr("fm_lab.store.duckdb_store.MIGRATIONS",
                        [m for m in schema.MIGRATIONS if m[0] != late])
    store = Store(path)
    store.runs()
    store.close()
    before = _tables(path)
    monkeypatch.setattr("fm_lab.store.duckdb_store.MIGRATIONS", schema.MIGRATIONS)
    reopened = Store(path)
    reopened.runs()
    reopened.close()
    versions = reopened.sql("select value from meta where key = 'schema_versions'")["value"][0]
    assert versions == ",".join(str(n) for n, _ in schema.MIGRATIONS)
    assert _tables(path) >= before


def _write_v3_file(path) -> None:
    """A store file as fm_lab wrote it at schema version 3 (no version list, no views)."""
    con = duckdb.connect(str(path))
    con.execute("create table meta (key varchar primary key, value varchar)")
    con.execute("insert into meta values ('schema_version', '3')")
    for number, sql in schema.MIGRATIONS:
        if number <= 3:
            con.execute(sql)
    con.close()


def test_an_old_file_without_the_version_list_counts_versions_up_to_its_own(tmp_path):
    path = tmp_path / "old.duckdb"
    _write_v3_file(path)
    store = Store(path)
    assert store.runs().empty
    store.close()
    assert {"batches", "batch_items"} <= _tables(path)


def test_shard_views_union_the_tables_with_parquet_shards(tmp_path):
    store = Store(tmp_path / "v.duckdb")
    assert store.sql("select count(*) as n from all_runs")["n"][0] == 0
    fm_lab.run({"id": "local", "nodes": {"t": {"type": "template",
                                               "config": {"template": "x"}}}}, store=store)
    item = store.shard_dir / "b1" / "items" / "r1"
    item.mkdir(parents=True)
    with store.connection() as con:
        for table in ("runs", "node_executions", "spans"):
            rows = con.sql(f"select * replace ('r1' as run_id) from {table}").to_arrow_table()
            pq.write_table(rows, item / f"{table}.parquet")
    half = store.shard_dir / "b1" / "tmp" / "r2-abc"  # a shard being written is not seen
    half.mkdir(parents=True)
    pq.write_table(pa.table({"run_id": ["r2"]}), half / "runs.parquet")
    ids = sorted(store.sql("select run_id from all_runs")["run_id"])
    assert len(ids) == 2 and "r1" in ids
    assert len(fm_lab.runs(store=store)) == 2
    assert set(fm_lab.traces(store=store)["run_id"]) == set(ids)


def test_traceparent_links_top_level_runs(monkeypatch):
    assert parse_traceparent("00-" + "a" * 32 + "-" + "b" * 16 + "-01") == ("a" * 32, "b" * 16)
    with pytest.raises(ValueError, match="W3C traceparent"):
        parse_traceparent("00-abc-def-01")
    with pytest.raises(ValueError, match="hex"):
        parse_traceparent("00-" + "z" * 32 + "-" + "b" * 16 + "-01")
    monkeypatch.delenv("FM_LAB_TRACEPARENT", raising=False)
    assert linked_parent() is None
    monkeypatch.setenv("FM_LAB_TRACEPARENT", "00-" + "c" * 32 + "-" + "d" * 16 + "-01")
    assert linked_parent() == ("c" * 32, "d" * 16)
    with link_trace("e" * 32, "f" * 16):
        assert linked_parent() == ("e" * 32, "f" * 16)
        run = fm_lab.run({"id": "linked", "nodes": {"t": {"type": "template",
                                                          "config": {"template": "x"}}}},
                         store=Store(":memory:"))
        spans = run.store.sql("select trace_id, parent_span_id from spans "
                              "where kind = 'workflow'")
        assert spans.iloc[0].tolist() == ["e" * 32, "f" * 16]
    assert linked_parent() == ("c" * 32, "d" * 16)


def test_a_read_only_file_from_before_the_views_still_answers_queries(tmp_path):
    path = tmp_path / "v3.duckdb"
    _write_v3_file(path)
    reader = Store(path, read_only=True)
    assert reader.runs().empty
    assert fm_lab.traces(store=reader).empty
    reader.close()
    assert "batches" not in _tables(path)  # a reader changes nothing
