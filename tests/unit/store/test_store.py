import duckdb
import pytest

import fm_lab
from fm_lab.store import Store, StoreVersionError
from fm_lab.store.schema import LATEST_VERSION

WF = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "x"}}}}


def test_a_new_file_gets_the_latest_schema(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    frame = store.sql("select value from meta where key = 'schema_version'")
    assert int(frame.iloc[0, 0]) == LATEST_VERSION


def test_a_newer_file_is_refused_clearly(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).runs()
    con = duckdb.connect(str(path))
    con.execute("update meta set value = '999' where key = 'schema_version'")
    con.close()
    with pytest.raises(StoreVersionError, match="newer fm_lab"):
        Store(path).runs()


def test_workflow_versions_follow_content(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    fm_lab.run(WF, store=store)
    fm_lab.run(WF, store=store)
    changed = {**WF, "nodes": {"a": {"type": "template", "config": {"template": "y"}}}}
    fm_lab.run(changed, store=store)
    versions = store.sql("select version from workflows order by version")["version"].tolist()
    assert versions == [1, 2]
    assert store.runs()["workflow_version"].tolist() == [2, 1, 1]


def test_the_file_is_released_between_operations(tmp_path):
    path = tmp_path / "s.duckdb"
    store = Store(path, group_delay_s=0)  # each run stored at its end
    fm_lab.run(WF, store=store)
    con = duckdb.connect(str(path), read_only=True)  # would fail if the store still held it
    assert con.execute("select count(*) from runs").fetchone() == (1,)
    con.close()


def test_hold_keeps_one_connection(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    with store.hold(), store.connection() as first, store.connection() as second:
        assert first is second
    assert store._con is None


def test_unknown_run_is_a_clear_error():
    with pytest.raises(fm_lab.RunNotFoundError, match="no run 'nope'"):
        fm_lab.get_run("nope", store=Store(":memory:"))


def test_spans_are_written_in_small_row_groups_and_the_file_stays_plain_duckdb(tmp_path):
    from fm_lab.store.attachments import ROW_GROUP_SIZE

    path = tmp_path / "my store.duckdb"  # a name that needs quoting
    store = Store(path)
    fm_lab.run(WF, store=store)
    rows = [{"k": "span", "trace": f"{i // 100:032x}", "span": f"{i:016x}", "kind": "tool",
             "started": 1.0, "ended": 2.0, "seq": 100 + i} for i in range(ROW_GROUP_SIZE * 2 + 5)]
    run_id = store.runs()["run_id"].item()
    store.ingest(run_id, rows)
    groups = store.sql("select count(distinct row_group_id) as n from pragma_storage_info('spans')")
    assert groups["n"].item() >= 3  # the default (122,880 rows) would be one
    con = duckdb.connect(str(path), read_only=True)  # any DuckDB client reads the file
    assert con.execute("select count(*) from all_spans").fetchone() == (len(rows) + 2,)
    con.close()
    reader = Store(path, read_only=True)
    assert len(reader.runs()) == 1


def test_a_failed_ingest_rolls_back_and_a_later_one_stores_everything(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    run_id = fm_lab.run(WF, store=store).run_id

    def counts():
        return tuple(int(store.sql(query, [run_id]).iloc[0, 0]) for query in (
            "select journal_seq from runs where run_id = ?",
            "select count(*) from spans where run_id = ?",
            "select count(*) from steps where run_id = ?"))

    seq, spans, steps = before = counts()
    span = {"k": "span", "trace": "0" * 32, "span": "1" * 16, "kind": "tool", "name": "late",
            "started": 1.0, "ended": 2.0, "seq": seq + 1}
    step = {"k": "step", "path": "a", "name": "a#charge", "result": 1, "seq": seq + 2}
    # the span goes in first, then the step's timestamp is refused: nothing may stay behind
    with pytest.raises(duckdb.Error):
        store.ingest(run_id, [span, {**step, "created": "not a time"}])
    assert counts() == before

    store.ingest(run_id, [span, {**step, "created": 3.0}])  # the same records, well formed
    assert counts() == (seq + 2, spans + 1, steps + 1)


def test_the_wait_for_a_busy_file_comes_from_the_environment(tmp_path, monkeypatch):
    from fm_lab.store.errors import StoreError

    monkeypatch.setenv("FM_LAB_LOCK_TIMEOUT_S", "42.5")
    assert Store(tmp_path / "a.duckdb").lock_timeout_s == 42.5
    assert Store(tmp_path / "a.duckdb", lock_timeout_s=1).lock_timeout_s == 1
    monkeypatch.setenv("FM_LAB_LOCK_TIMEOUT_S", "soon")
    with pytest.raises(StoreError, match=r"^FM_LAB_LOCK_TIMEOUT_S='soon' is not a number"):
        Store(tmp_path / "a.duckdb")
    monkeypatch.delenv("FM_LAB_LOCK_TIMEOUT_S")
    assert Store(tmp_path / "a.duckdb").lock_timeout_s == 10.0


def test_a_short_runs_row_is_inserted_as_it_ended(tmp_path, monkeypatch):
    """A run started and ended in one ingest gets its row in one insert (no update after);
    a resumed run's end still updates the row the start stored."""
    ends = []
    real_end = Store._end_run

    def end_run(self, con, run_id, record):
        ends.append((run_id, record["status"]))
        real_end(self, con, run_id, record)

    monkeypatch.setattr(Store, "_end_run", end_run)
    store = Store(tmp_path / "s.duckdb")
    run = fm_lab.run({"id": "short", "nodes": {
        "a": {"type": "template", "config": {"template": "x{{ inputs.n }}"}}}},
        {"n": 2}, store=store)
    assert ends == []
    row = store.runs().set_index("run_id").loc[run.run_id]
    assert (row["status"], row["outputs"], row["error"]) == ("succeeded", '{"a":"x2"}', None)
    assert row["ended_at"] is not None and row["ended_at"] >= row["created_at"]
    with store.connection() as con:
        seq, state = con.execute("select journal_seq, state from runs where run_id = ?",
                                 [run.run_id]).fetchone()
    assert seq > store.load_run(run.run_id).nodes["a"]["seq"]  # the end's: nothing to ingest
    assert state == "{}"

    approve = {"id": "held", "nodes": {
        "ok": {"type": "approval", "config": {"message": "go?", "label": "ok"}}}}
    waiting = fm_lab.run(approve, store=store)
    assert waiting.status == "suspended" and ends == []  # inserted as suspended
    assert store.runs().set_index("run_id").loc[waiting.run_id]["status"] == "suspended"
    done = fm_lab.resume(waiting.run_id, {"approved": True}, label="ok", store=store)
    assert done.status == "succeeded" and ends == [(waiting.run_id, "succeeded")]
    assert store.runs().set_index("run_id").loc[waiting.run_id]["status"] == "succeeded"
