"""Rows in and out of a store's tables as Arrow tables, for :mod:`fm_lab.store.copy`.

The same calls on a DuckDB connection and on a :class:`~fm_lab.store.pg_sql.PgConnection`:
DuckDB reads to Arrow natively and inserts from a registered Arrow table; PostgreSQL reads
through a server-side cursor and writes with ``COPY ... FROM STDIN``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fm_lab.store.transaction import transaction as sql_transaction

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 10_000  # rows per Arrow batch read from the source


def is_postgres(con: Any) -> bool:
    """Whether ``con`` is a PostgreSQL connection (else DuckDB)."""
    return getattr(con, "dialect", None) == "postgres"


def columns(con: Any, relation: str) -> list[str] | None:
    """The column names of a table or view (None when it does not exist). Call outside a
    transaction: on PostgreSQL a failed statement ends the transaction it is in."""
    try:
        cursor = con.execute(f"select * from {relation} limit 0")
        names = [d[0] for d in cursor.description]
        cursor.fetchall()
    except Exception:  # an older store without this table
        return None
    return names


def arrow(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows (tuples) as an Arrow table with the columns ``names``."""
    import pyarrow as pa

    data = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table({name: pa.array(list(values)) for name, values in
                     zip(names, data, strict=True)})


def query(con: Any, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
    """The whole result of ``sql`` as an Arrow table."""
    cursor = con.execute(sql, list(params or []))
    names = [d[0] for d in cursor.description]
    return arrow(names, cursor.fetchall())


def read_batches(con: Any, relation: str, names: Sequence[str]) -> Iterator[pa.Table]:
    """Every row of ``relation`` (its columns ``names``), :data:`BATCH_ROWS` at a time."""
    import pyarrow as pa

    sql = f"select {', '.join(names)} from {relation}"
    if is_postgres(con):
        for rows in fetch_batches(con, sql):
            yield arrow(names, rows)
        return
    for batch in con.sql(sql).to_arrow_reader(BATCH_ROWS):
        yield pa.Table.from_batches([batch])


def fetch_batches(con: Any, sql: str, params: Sequence[Any] | None = None,
                  size: int = BATCH_ROWS) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``sql``, ``size`` at a time (tuples); on PostgreSQL through a server-side
    cursor, so the server never sends the whole result at once."""
    if is_postgres(con):
        from fm_lab.store.pg_sql import placeholders

        with con.raw.transaction(), con.raw.cursor(name="fm_lab_copy") as cursor:
            cursor.execute(placeholders(sql) if params else sql, list(params or []))
            while rows := cursor.fetchmany(size):
                yield rows
        return
    cursor = con.execute(sql, list(params or []))
    while rows := cursor.fetchmany(size):
        yield rows


def count(con: Any, relation: str) -> int:
    """Rows in ``relation``."""
    return int(con.execute(f"select count(*) from {relation}").fetchall()[0][0])


def existing(con: Any, table: str, keys: pa.Table, also: Sequence[str] = ()) -> pa.Table:
    """The rows of ``table`` whose key (the columns of ``keys``) is among ``keys``: the key
    columns, then ``also``. The keys go to the server as a temporary table, so a large
    target is not read whole."""
    names = list(keys.column_names)
    if keys.num_rows == 0:
        return arrow([*names, *also], [])
    con.register("_fm_copy_keys", keys)
    try:
        on = " and ".join(f"t.{n} = k.{n}" for n in names)
        picked = ", ".join(f"t.{n}" for n in [*names, *also])
        return query(con, f"select {picked} from {table} t join _fm_copy_keys k on {on}")
    finally:
        con.unregister("_fm_copy_keys")


def write(con: Any, table: str, data: pa.Table) -> None:
    """Append ``data`` (columns named as the table's) to ``table``."""
    if data.num_rows == 0:
        return
    names = ", ".join(data.column_names)
    if is_postgres(con):
        columns_ = [column.to_pylist() for column in data.columns]
        with con.raw.cursor().copy(f"copy {table} ({names}) from stdin") as copy:
            for row in zip(*columns_, strict=True):
                copy.write_row(row)
        return
    con.register("_fm_copy_rows", data)
    try:
        con.execute(f"insert into {table} ({names}) select {names} from _fm_copy_rows")
    finally:
        con.unregister("_fm_copy_rows")


@contextlib.contextmanager
def transaction(con: Any, workflow_ids: Sequence[str] = ()) -> Iterator[None]:
    """One transaction on the target; on PostgreSQL it holds the locks a run takes to store
    a new version of each of ``workflow_ids`` (see ``PostgresStore._save_spec``)."""
    if is_postgres(con):
        with con.raw.transaction():
            for workflow_id in sorted(set(workflow_ids)):
                con.execute("select pg_advisory_xact_lock(hashtextextended("
                            "'fm_lab.workflow:' || ?, 0))", [workflow_id])
            yield
        return
    with sql_transaction(con):
        yield
