"""Span payloads are encoded in bulk at ingest (orjson when present) with the same results as
the store's codec for everything a node may return."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pandas as pd

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
