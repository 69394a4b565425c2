"""Column lists reach DuckDB the same way through list parameters and through Arrow."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import duckdb
import pytest

from fm_lab.store import columns

TYPES = {"name": "VARCHAR", "n": "BIGINT", "small": "INTEGER", "x": "DOUBLE", "ok": "BOOLEAN"}
COLS: dict[str, list[Any]] = {"name": ["a", None, "é"], "n": [1, 2**40, None],
                              "small": [None, 3, 4], "x": [1.5, None, 0.0],
                              "ok": [True, None, False]}


@pytest.mark.parametrize("small", [0, 256])
def test_relation_rows(monkeypatch: pytest.MonkeyPatch, small: int) -> None:
    monkeypatch.setattr(columns, "SMALL", small)
    con = duckdb.connect()
    with columns.relation(con, "_t", COLS, TYPES) as (source, params):
        rows = con.execute(f"select * from {source}", params).fetchall()
    assert rows == list(zip(*COLS.values(), strict=True))


def test_small_batches_import_no_pandas() -> None:
    code = ("import duckdb, sys; from fm_lab.store.columns import relation\n"
            "con = duckdb.connect()\n"
            "with relation(con, 't', {'a': [1]}, {'a': 'BIGINT'}) as (s, p):\n"
            "    con.execute(f'select * from {s}', p).fetchall()\n"
            "print('pandas' in sys.modules, 'pyarrow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
