"""A PostgreSQL connection that answers the calls fm_lab's SQL modules make on a DuckDB one.

Tracing queries, agent memory and batch tables are written once, in SQL both engines run
(``?`` placeholders, ``to_timestamp``, ``distinct on``, window functions, ``on conflict``);
:class:`PgConnection` takes that SQL to psycopg: ``?`` become ``%s`` (outside quoted text),
results come back as tuples or a DataFrame, and :meth:`PgConnection.register` makes a
DataFrame or Arrow table a temporary table, as DuckDB's ``register`` makes it a view.
JSON columns come back as their text, as DuckDB returns them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

DIALECT = "postgres"


@contextlib.contextmanager
def pipelined_transaction(conn: psycopg.Connection[Any],
                          then: Callable[[], object] | None = None) -> Iterator[None]:
    """One transaction on the autocommit connection ``conn`` in pipeline mode: ``begin``, the
    block's statements and ``commit`` go out together, and only the block's fetches and the
    end wait for the server. psycopg's ``transaction()`` inside a pipeline syncs on entering,
    before its commit and after it (three more round trips). A block that raises, or a
    statement the server refuses, leaves nothing: the transaction is rolled back. ``then()``
    sends what follows the commit in the same round trip (a statement after a failed one is
    skipped by the server). Inside a transaction the caller has open, the block is psycopg's
    savepoint (a ``begin`` there would be ignored and the ``commit`` would end the caller's
    transaction), and ``then`` is not allowed."""
    from psycopg import pq

    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        if then is not None:
            raise RuntimeError("pipelined_transaction(then=...) inside an open transaction")
        with conn.transaction():
            yield
        return
    try:
        with conn.pipeline():
            conn.execute("begin")
            yield
            conn.execute("commit")
            if then is not None:
                then()
    except BaseException:
        if not conn.closed and conn.info.transaction_status in (
                pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR):
            with contextlib.suppress(Exception):
                conn.execute("rollback")
        raise


@functools.lru_cache(maxsize=1024)
def placeholders(query: str) -> str:
    """``query`` with DuckDB's ``?`` placeholders as psycopg's ``%s`` (and ``%`` doubled),
    leaving quoted text, quoted names and comments alone. Cached: the store's statements
    are few and run on every commit (rewriting one took ~0.15 ms)."""
    out: list[str] = []
    quote: str | None = None
    i, n = 0, len(query)
    while i < n:
        char = query[i]
        if char == "%":
            out.append("%%")
        elif quote is not None:
            out.append(char)
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
            out.append(char)
        elif char == "-" and query.startswith("--", i):
            end = query.find("\n", i)
            end = n if end < 0 else end
            out.append(query[i:end].replace("%", "%%"))
            i = end
            continue
        elif char == "?":
            out.append("%s")
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _table_rows(table: Any) -> tuple[list[str], list[str], Iterable[Sequence[Any]]]:
    """Column names, PostgreSQL types and rows of a DataFrame or an Arrow table."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        columns = [str(c) for c in table.columns]
        types = [_pg_type([v for v in table[c].tolist() if v is not None and v == v],
                          str(table[c].dtype)) for c in table.columns]
        clean = table.astype(object).where(table.notna(), None)
        return columns, types, clean.itertuples(index=False, name=None)
    import pyarrow as pa

    types = []
    for field in table.schema:
        kind = field.type
        types.append("bigint" if pa.types.is_integer(kind)
                     else "double precision" if pa.types.is_floating(kind)
                     else "boolean" if pa.types.is_boolean(kind)
                     else "timestamptz" if pa.types.is_timestamp(kind) else "text")
    names = list(table.column_names)
    return names, types, (tuple(row[n] for n in names) for row in table.to_pylist())


def _pg_type(values: Sequence[Any], dtype: str) -> str:
    """The PostgreSQL column type for a registered column."""
    if dtype.startswith(("int", "uint")):
        return "bigint"
    if dtype.startswith("float") or dtype == "double":
        return "double precision"
    if dtype in ("bool", "boolean"):
        return "boolean"
    if "datetime" in dtype or "timestamp" in dtype:
        return "timestamptz"
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return "boolean"
    if isinstance(sample, int):
        return "bigint"
    if isinstance(sample, float):
        return "double precision"
    if isinstance(sample, dt.datetime):
        return "timestamptz"
    return "text"


class PgConnection:
    """A psycopg connection with the DuckDB-style calls fm_lab's SQL modules use."""

    dialect = DIALECT

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn
        self._made: psycopg.Cursor[Any] | None = None
        self._registered: set[str] = set()
        # workflow versions stored or read by the block's transaction: (workflow_id, content
        # hash) -> version, for the store to remember once it commits
        self.versions: dict[tuple[str, str], int] = {}

    @property
    def _cursor(self) -> psycopg.Cursor[Any]:
        """The connection's cursor for these calls, made at the first (a commit that goes
        through ``raw`` makes none)."""
        if self._made is None:
            self._made = self.raw.cursor()
        return self._made

    # ---- statements ----------------------------------------------------------------------
    def execute(self, query: str, params: Sequence[Any] | None = None) -> PgConnection:
        """Run ``query`` (``?`` placeholders); fetch its rows with the methods below."""
        if params:
            self._cursor.execute(placeholders(query), list(params))
        else:
            self._cursor.execute(query)
        return self

    def executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> PgConnection:
        """Run ``query`` once per row of parameters (pipelined by psycopg)."""
        self._cursor.executemany(placeholders(query), rows)
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row, or None."""
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every remaining row (none for a statement without a result)."""
        return self._cursor.fetchall() if self._cursor.description else []

    @property
    def description(self) -> Any:
        """The result's columns (DB-API)."""
        return self._cursor.description

    def df(self) -> pd.DataFrame:
        """The result as a DataFrame with DuckDB's dtypes: timestamps in UTC, integers and
        booleans nullable (``Int64``, ``boolean``) where a NULL is among them, floats
        ``float64``."""
        import pandas as pd

        described = list(self._cursor.description or ())
        names = [c.name for c in described]
        frame = pd.DataFrame(self.fetchall(), columns=names)
        for index, desc in enumerate(described):
            column = frame.iloc[:, index]
            kind = _DTYPES.get(desc.type_code)
            if kind is None:
                continue
            converted: Any
            if kind == "timestamp":
                converted = pd.to_datetime(column, utc=True)
            elif kind == "float":
                converted = column.astype("float64")
            else:
                nullable = column.isna().any()
                converted = column.astype(("Int64" if nullable else "int64") if kind == "int"
                                          else ("boolean" if nullable else "bool"))
            frame.isetitem(index, converted)
        return frame

    # ---- registered tables ---------------------------------------------------------------
    def register(self, name: str, table: Any) -> None:
        """Make a DataFrame or Arrow table queryable as ``name`` (a temporary table, filled
        with COPY) until :meth:`unregister`."""
        columns, types, rows = _table_rows(table)
        ddl = ", ".join(f'"{c}" {t}' for c, t in zip(columns, types, strict=True))
        self._cursor.execute(f'create temporary table "{name}" ({ddl})')
        self._registered.add(name)
        with self._cursor.copy(f'copy "{name}" from stdin') as copy:
            for row in rows:
                copy.write_row(row)

    def unregister(self, name: str) -> None:
        """Drop a table made by :meth:`register`."""
        if name in self._registered:
            self._registered.discard(name)
            self._cursor.execute(f'drop table if exists "{name}"')

    def close(self) -> None:
        """Drop registered tables and the cursor (the connection goes back to its pool)."""
        for name in list(self._registered):
            self.unregister(name)
        if self._made is not None:
            self._made.close()


# result type oids -> the dtype family DuckDB's ``df()`` gives them
_DTYPES = {1184: "timestamp", 1114: "timestamp", 20: "int", 21: "int", 23: "int",
           700: "float", 701: "float", 1700: "float", 16: "bool"}


def configure(conn: psycopg.Connection[Any]) -> None:
    """JSON columns load as their text (fm_lab decodes JSON itself, NaN included)."""
    from psycopg.types.string import TextLoader

    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, TextLoader)
