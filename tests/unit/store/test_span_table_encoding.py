"""Span payloads are encoded in bulk at ingest (orjson when present) with the same results as
the store's codec for everything a node may return."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pandas as pd
import pytest

from fm_lab.store import span_table


@dataclasses.dataclass
class Point:
    x: int
    y: float


def _span(output):
    return {"k": "span", "trace": "t" * 32, "span": "s" * 16, "kind": "tool", "name": "n",
            "started": 1.0, "ended": 2.0, "status": "ok", "output": output}


def test_payloads_of_every_kind_encode_as_json():
    outputs = [
        {"big": 2**70, "float": 1.5},  # beyond 64 bits: the standard encoder takes over
        pd.DataFrame({"a": [1, 2]}),
        Point(1, 2.5),
        {"when": dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)},
        float("nan"),
    ]
    cols = span_table.rows_from_records("run", "wf", [_span(o) for o in outputs])
    decoded = [json.loads(text) for text in cols["output"]]
    assert decoded[0] == {"big": 2**70, "float": 1.5}
    assert decoded[1]["__fm_type__"] == "dataframe"
    assert decoded[2] == {"x": 1, "y": 2.5}
    assert decoded[3]["when"].startswith("2026-11-24T12:00:00")
    assert decoded[4] is None
    assert cols["output_size"] == [len(t) for t in cols["output"]]


def test_span_records_parsed_by_duckdb_match_the_python_rows(tmp_path, monkeypatch):
    import duckdb

    monkeypatch.setattr(span_table, "SMALL", 0)  # DuckDB's from_json, as for a bulk ingest

    from fm_lab.store.schema import MIGRATIONS

    records = [
        {**_span({"answer": "x" * 50}), "span": f"{i:016x}", "input": {"q": "é ✓ " * i},
         "attrs": {"gen_ai.request.model": "gpt-4o"} if i % 2 else {}, "events": [],
         "error": {"message": "boom"} if i == 3 else None, "run": None if i == 4 else "r1",
         "model": "gpt-4o", "input_tokens": 10 + i, "cost_usd": 0.5}
        for i in range(6)
    ]
    records[5]["output"] = "y" * 100  # cut to the limit, full size kept
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    for number, sql in MIGRATIONS:
        if number == 3:
            con.execute(sql.split(";", 1)[1])  # the spans table only
    span_table.insert_records(con, "run-x", "wf", records, limit=40)
    parsed = con.execute("select * from spans order by span_id").fetchall()
    con.execute("delete from spans")
    span_table.insert_spans(con, span_table.arrow_table(
        span_table.rows_from_records("run-x", "wf", records, limit=40)))
    built = con.execute("select * from spans order by span_id").fetchall()
    assert parsed == built
    row = {r[1]: r for r in parsed}
    assert row["0000000000000004"][3] == "run-x"  # a span without a run gets the ingesting one
    assert row["0000000000000005"][16] == json.dumps('"' + "y" * 39 + "…", ensure_ascii=False)
    assert row["0000000000000005"][18] == len('"' + "y" * 100 + '"')  # the full size


@pytest.mark.parametrize("small", [0, 256])  # DuckDB parses the text / Python does
def test_journal_text_is_ingested_as_is_with_the_same_rows(tmp_path, monkeypatch, small):
    import duckdb

    monkeypatch.setattr(span_table, "SMALL", small)

    from fm_lab.store.journal import encode_record
    from fm_lab.store.schema import MIGRATIONS

    records = [{**_span({"n": i, "score": float("nan")}), "span": f"{i:016x}", "seq": i + 1,
                "attrs": {"gen_ai.request.model": "gpt-4o"}, "input": {"q": "é" * i}}
               for i in range(5)]
    texts = {r["seq"]: encode_record(r) for r in records}
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    for number, sql in MIGRATIONS:
        if number == 3:
            con.execute(sql.split(";", 1)[1])
    span_table.insert_records(con, "run-x", "wf", records, texts=texts)
    from_text = con.execute("select * from spans order by span_id").fetchall()
    con.execute("delete from spans")
    span_table.insert_records(con, "run-x", "wf", records)
    assert from_text == con.execute("select * from spans order by span_id").fetchall()
    output = con.execute("select output from spans where span_id = ?", ["0" * 16]).fetchone()
    assert output is not None and json.loads(output[0]) == {"n": 0, "score": None}  # NaN: null

    con.execute("delete from spans")  # the text is what is stored, not the dict
    texts[1] = encode_record({**records[0], "output": "as journaled"})
    span_table.insert_records(con, "run-x", "wf", records[:1], texts=texts)
    assert con.execute("select output from spans").fetchone() == ('"as journaled"',)
