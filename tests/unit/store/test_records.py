"""Every journal record kind (``fm_lab.store.records``) goes through the journal writer and
each reader (``scan_journal``, ``split_records``, ``Store.ingest``, the span rows,
``Store.load_run``) unchanged; a journal written by earlier versions (literal lines as they
are on users' disks) still reads."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from fm_lab.engine.execute import Outcome, node_record, suspend_record
from fm_lab.exceptions import Suspended
from fm_lab.spec.models import Workflow
from fm_lab.store import Store
from fm_lab.store.journal import Journal, scan_journal, split_records
from fm_lab.store.records import (
    JournalRecord,
    NodeRecord,
    ResumeRecord,
    RunEndRecord,
    SpanRecord,
    StepRecord,
    stored_node,
)
from fm_lab.store.span_table import COLUMNS, rows_from_records

WF = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "x"}},
                           "b": {"type": "template", "config": {"template": "y"}}}}
RUN = "run-records"


def _records() -> list[JournalRecord]:
    """One record of every kind, built by the writers where they are functions."""
    start = Store.start_record(RUN, Workflow.from_dict(WF), {"x": 1})
    start["trace_id"] = "t" * 32
    a = node_record(
        Outcome(path="a", status="succeeded", output={"v": 1}, attempts=2, started=10.0,
                ended=11.5, state_patch={"s": 1}, input={"template": "x"}, span_id="s" * 16,
                parent_span_id="p" * 16, events=[{"name": "e"}], cache_key="key",
                cached_from={"run_id": "old", "path": "a"}),
        "template", "a", "t" * 32)
    b = node_record(
        Outcome(path="b", status="suspended", attempts=1, started=12.0, ended=13.0,
                span_id="u" * 16),
        "template", "b", "t" * 32)
    b["leaf"] = True
    suspend = suspend_record(Suspended("b", label="ok?", payload={"q": 1},
                                       resume_schema={"type": "object"}, expires_at=99.0,
                                       on_timeout="default", default={"d": 1}), "b", 13.0)
    step: StepRecord = {"k": "step", "path": "a", "name": "a#charge", "result": [1, 2],
                        "created": 10.5}
    resume: ResumeRecord = {"k": "resume", "path": "b", "data": {"answer": 42}, "at": 14.0}
    span: SpanRecord = {"k": "span", "trace": "t" * 32, "span": "v" * 16, "parent": "s" * 16,
                        "run": RUN, "kind": "tool", "name": "lookup", "entity": "lookup",
                        "workflow": "w", "node": "a", "started": 10.1, "ended": 10.2,
                        "status": "ok", "input": {"q": "x"}, "output": "y", "error": None,
                        "attrs": {"n": 1}, "events": None}
    end: RunEndRecord = {"k": "run", "status": "suspended", "outputs": None, "error": None,
                         "state": {"s": 1}, "ended": 13.5}
    records: list[JournalRecord] = [start, a, span, step, suspend, b, end, resume]
    for seq, record in enumerate(records, 1):
        record["seq"] = seq
    return records


def test_each_kind_round_trips_through_the_journal(tmp_path: Path) -> None:
    records = _records()
    journal = Journal(tmp_path / "r.journal")
    for record in records:
        journal.append(record)
    journal.commit()
    journal.close()
    scan = scan_journal(tmp_path / "r.journal")
    assert not scan.damage and not scan.torn_tail
    assert scan.records == json.loads(json.dumps(records))  # every key kept, as JSON has it
    nodes, spans, others = split_records(scan.records)
    assert [r["node"] for r in nodes] == ["a", "b"]
    assert [r["span"] for r in spans] == ["v" * 16]
    assert [r["k"] for r in others] == ["start", "step", "suspend", "run", "resume"]


def test_ingested_records_load_back_by_column_name() -> None:
    store = Store(":memory:")
    store.ingest(RUN, _records())
    snapshot = store.load_run(RUN)
    assert snapshot.status == "suspended" and snapshot.journal_seq == 8
    assert snapshot.inputs == {"x": 1} and snapshot.state == {"s": 1}
    assert snapshot.trace_id == "t" * 32 and snapshot.parent_run_id is None
    assert snapshot.workflow.id == "w"
    assert snapshot.nodes["a"] == {
        "status": "succeeded", "output": {"v": 1}, "error": None, "state_patch": {"s": 1},
        "attempts": 2, "seq": 2, "started": 10.0, "ended": 11.5, "type": "template",
        "leaf": True, "input": {"template": "x"}, "cache_key": "key",
        "cached_from": {"run_id": "old", "path": "a"},
    }
    assert snapshot.nodes["b"]["status"] == "suspended" and snapshot.nodes["b"]["leaf"] is True
    assert snapshot.steps == {"a#charge": [1, 2]}
    assert snapshot.resumes == {"b": {"answer": 42}}  # b has not succeeded since
    pending = store.pending(RUN)
    assert pending.empty  # answered (the resume record consumed it)
    suspension = store.sql("select * from suspensions").iloc[0]
    assert (suspension["label"], suspension["on_timeout"]) == ("ok?", "default")
    assert json.loads(suspension["payload"]) == {"q": 1}
    spans = store.sql("select span_id, kind, name, status from spans order by started_at")
    assert spans.values.tolist() == [["s" * 16, "node", "a", "ok"],
                                     ["v" * 16, "tool", "lookup", "ok"],
                                     ["u" * 16, "node", "b", "suspended"]]


def test_span_rows_from_node_and_span_records() -> None:
    records = _records()
    cols = rows_from_records(RUN, "w", records)
    assert set(cols) == set(COLUMNS)
    assert cols["span_id"] == ["s" * 16, "v" * 16, "u" * 16]  # the other kinds have none
    assert cols["parent_span_id"] == ["p" * 16, "s" * 16, None]
    attributes = json.loads(cols["attributes"][0])
    assert attributes == {"node_type": "template", "attempts": 2, "fm_lab.cache.hit": True,
                          "fm_lab.cache.source": {"run_id": "old", "path": "a"}}
    assert cols["input"][1] == '{"q":"x"}' and cols["input_size"][1] == 9


def _line(record: dict[str, Any]) -> bytes:
    body = json.dumps(record).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


# as the code before fm_lab.store.records wrote them (no trace_id in the start record, a
# skipped node without span keys, an older node record without cache keys)
OLD_JOURNAL = [
    {"k": "start", "workflow_id": "w", "version": 1, "hash": "h1", "spec": WF,
     "inputs": {}, "pid": 1, "host": "old-host", "parent": None, "created": 1.0, "seq": 1},
    {"k": "node", "node": "a", "type": "template", "status": "succeeded", "attempts": 1,
     "input": None, "output": "x", "error": None, "state_patch": None, "started": 2.0,
     "ended": 3.0, "span": "a" * 16, "pspan": "w" * 16, "trace": "t" * 32, "entity": "a",
     "events": None, "seq": 2},
    {"k": "node", "node": "b", "type": "template", "status": "skipped", "attempts": 0,
     "input": None, "output": None, "error": None, "state_patch": None, "started": 3.0,
     "ended": 3.0, "seq": 3},
    {"k": "span", "trace": "t" * 32, "span": "w" * 16, "parent": None, "run": "old-run",
     "kind": "workflow", "name": "w", "entity": "w", "workflow": "w", "started": 1.0,
     "ended": 4.0, "status": "ok", "error": None, "output": {"a": "x"}, "seq": 4},
    {"k": "run", "status": "succeeded", "outputs": {"a": "x"}, "error": None, "state": {},
     "ended": 4.0, "seq": 5},
]


def test_a_journal_written_by_earlier_versions_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).runs()  # the file exists, with its journal folder
    (Path(str(path) + ".journal") / "old-run.journal").write_bytes(
        b"".join(_line(r) for r in OLD_JOURNAL))
    store = Store(path)  # recovers the dead process's journal
    snapshot = store.load_run("old-run")
    assert snapshot.status == "succeeded" and snapshot.outputs == {"a": "x"}
    assert snapshot.trace_id is None  # older start records have none
    assert snapshot.nodes["a"]["output"] == "x" and snapshot.nodes["a"]["cache_key"] is None
    assert snapshot.nodes["b"]["status"] == "skipped"
    kinds = store.sql("select kind from spans order by started_at")["kind"].tolist()
    assert kinds == ["workflow", "node"]  # the skipped node has no span


def test_a_stored_row_decodes_by_column_name() -> None:
    row = {"node_id": "a", "status": "suspended", "output": "null", "error": None,
           "state_patch": '{"s": 1}', "attempts": 1, "seq": 4, "started": 1.0, "ended": 2.0,
           "node_type": "human", "leaf": None, "input": None, "cache_key": None,
           "cached_from": None}
    node = stored_node(row)
    assert node["leaf"] is True  # rows from before the leaf column: a leaf
    assert node["state_patch"] == {"s": 1} and node["type"] == "human"
    assert stored_node({**row, "leaf": False})["leaf"] is False


def test_an_outcome_is_built_by_keyword() -> None:
    with pytest.raises(TypeError):
        Outcome("a", "succeeded")  # type: ignore[misc]
    record: NodeRecord = node_record(Outcome(path="a", status="failed"), "t", "a", "tr")
    assert "cache_key" not in record and "cached_from" not in record and "leaf" not in record


def test_postgres_span_columns_follow_the_duckdb_ones() -> None:
    from fm_lab.store.pg_rows import SPAN_COLUMNS

    start = SPAN_COLUMNS.index("started_at")  # pg_rows relies on it: timestamps, then duration
    assert SPAN_COLUMNS[start:start + 3] == ("started_at", "ended_at", "duration_ms")
    assert (*SPAN_COLUMNS[:start], "started", "ended", *SPAN_COLUMNS[start + 3:]) == COLUMNS


def test_postgres_span_rows_are_the_duckdb_columns_row_by_row() -> None:
    """pg_rows.span_rows and span_table.rows_from_records share span_values: the same spans,
    PostgreSQL's with timestamps, the duration, and names without NUL bytes."""
    from fm_lab.store.pg_rows import SPAN_COLUMNS, span_rows

    records = [*_records(),
               {"k": "span", "trace": "t" * 32, "span": "x" * 16, "parent": None,
                "run": None, "kind": "llm", "name": "na\x00me", "entity": None,
                "workflow": None, "started": 5.0, "ended": None, "status": "error",
                "input": "y" * 5000, "output": None, "error": {"message": "boom"},
                "attrs": {"k": 1}, "events": [{"e": 1}], "model": "m", "provider": "p",
                "input_tokens": 3, "output_tokens": 4, "cached_tokens": 0,
                "cache_write_tokens": None, "reasoning_tokens": 1, "cost_usd": 0.5,
                "seq": 90},
               {"k": "node", "node": "loop[3]", "type": "code", "status": "failed",
                "attempts": 1, "input": None, "output": None, "error": {"m": 1},
                "started": 6.0, "ended": 6.5, "span": "i" * 16, "pspan": None,
                "trace": "t" * 32, "entity": "loop", "events": None, "seq": 91}]
    cols = rows_from_records(RUN, "w", records)
    rows = span_rows(RUN, "w", records)
    assert len(rows) == len(cols["span_id"]) == 5
    for index, row in enumerate(rows):
        got = dict(zip(SPAN_COLUMNS, row, strict=True))
        for name in COLUMNS:
            if name in ("started", "ended"):
                stamp, seconds = got[name + "_at"], cols[name][index]
                assert (stamp.timestamp() if stamp else None) == seconds
            elif name == "name" and cols[name][index] is not None:
                assert got[name] == cols[name][index].replace("\x00", "\ufffd")
            else:
                assert got[name] == cols[name][index], name
        started, ended = cols["started"][index], cols["ended"][index]
        assert got["duration_ms"] == (None if ended is None else (ended - started) * 1000)
    assert rows[3][SPAN_COLUMNS.index("name")] == "na\ufffdme"
    assert len(cols["input"][3]) < 5000 and cols["input_size"][3] == 5002  # cut, sized whole
    assert rows[4][SPAN_COLUMNS.index("kind")] == "item"
    assert span_rows(RUN, "w", records * 3) == rows * 3  # many: column by column, the same
