"""Python column lists handed to DuckDB as a relation: list parameters for small batches,
an Arrow table for large ones.

A short run ingests a dozen rows; building them with pyarrow imports pandas (``pa.array``
checks for pandas objects), 0.3-1 s in a new process, and up to a few hundred rows DuckDB's
``unnest`` of typed list parameters is as fast as Arrow anyway. Past :data:`SMALL` rows Arrow
is faster (5,000 rows: ~3x), so big ingests keep it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

SMALL = 256
_ARROW = {"VARCHAR": "string", "BIGINT": "int64", "INTEGER": "int32", "DOUBLE": "float64",
          "BOOLEAN": "bool_"}


def arrow_table(cols: dict[str, list[Any]], types: dict[str, str]) -> Any:
    """An Arrow table of ``cols``, typed by their DuckDB ``types``."""
    import pyarrow as pa

    def arrow_type(kind: str) -> Any:
        if kind == "TIMESTAMPTZ":  # timezone-aware datetimes (audit rows' acted_at)
            return pa.timestamp("us", tz="UTC")
        return getattr(pa, _ARROW[kind])()

    def column(name: str) -> Any:
        kind = types[name]
        try:
            return pa.array(cols[name], arrow_type(kind))
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # an int in a text column, ...: cast
            return pa.array([_cast(kind, v) for v in cols[name]], arrow_type(kind))

    return pa.table({name: column(name) for name in types})


def _cast(kind: str, value: Any) -> Any:
    """``value`` as DuckDB casts a list parameter to ``kind`` (what the small path does)."""
    if value is None:
        return None
    if kind == "VARCHAR":
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    if kind in ("BIGINT", "INTEGER"):
        return int(value)
    if kind == "DOUBLE":
        return float(value)
    return value


@contextmanager
def relation(con: duckdb.DuckDBPyConnection, name: str, cols: dict[str, list[Any]],
             types: dict[str, str]) -> Iterator[tuple[str, list[Any]]]:
    """``(sql, params)``: a FROM item with the columns of ``cols`` (DuckDB ``types``, in that
    order) and the positional parameters it takes."""
    rows = len(next(iter(cols.values()), []))
    if rows > SMALL:
        con.register(name, arrow_table(cols, types))
        try:
            yield name, []
        finally:
            con.unregister(name)
        return
    sql = ", ".join(f"unnest(?::{kind}[]) as {column}" for column, kind in types.items())
    yield f"(select {sql})", [cols[c] for c in types]
