"""One transaction block on a store connection, for the SQL both engines run: ``begin`` ...
``commit``, ``rollback`` on any error (a DuckDB connection, or a
:class:`~fm_lab.store.pg_sql.PgConnection` in autocommit mode, where ``begin`` opens one)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def transaction(con: Any) -> Iterator[Any]:
    """``begin`` ... ``commit`` on ``con``, ``rollback`` on any error."""
    con.execute("begin")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
