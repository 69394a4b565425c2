"""What memory's SQL modules share: the first row of a result and a transaction block. The
SQL itself is written once in what DuckDB and PostgreSQL both run (``?`` placeholders,
``to_timestamp``, ``on conflict``, ``= any(?)`` with a list); nothing here branches on the
engine."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def first(result: Any) -> Any:
    """The first row of a result (None if empty), consuming the result."""
    rows = result.fetchall()
    return rows[0] if rows else None


@contextlib.contextmanager
def transaction(con: Any) -> Iterator[Any]:
    """``begin`` ... ``commit`` on ``con`` (a store connection), ``rollback`` on any error."""
    con.execute("begin")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
