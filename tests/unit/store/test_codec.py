import dataclasses
import datetime as dt

import pandas as pd
import pytest
from pydantic import BaseModel

from fm_lab.store import codec


class Item(BaseModel):
    name: str
    price: float


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_plain_json_round_trips():
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": []}}
    assert codec.loads(codec.dumps(value)) == value


def test_models_dataclasses_dates_and_sets_become_json():
    value = {"item": Item(name="a", price=1.5), "p": Point(1, 2),
             "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "tags": {"x"}}
    assert codec.loads(codec.dumps(value)) == {
        "item": {"name": "a", "price": 1.5}, "p": {"x": 1, "y": 2},
        "when": "2026-01-02T03:04:05+00:00", "tags": ["x"]}


def test_dataframes_and_bytes_come_back_as_themselves():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    back = codec.loads(codec.dumps({"df": frame, "raw": b"\x00\x01"}))
    pd.testing.assert_frame_equal(back["df"], frame)
    assert back["raw"] == b"\x00\x01"


def test_unserialisable_values_are_named():
    with pytest.raises(codec.NotSerialisableError, match="object"):
        codec.dumps({"x": object()})


def test_none_stays_none():
    assert codec.loads(None) is None
