"""What memory's SQL modules share: the first row of a result and a transaction block. The
SQL itself is written once in what DuckDB and PostgreSQL both run (``?`` placeholders,
``to_timestamp``, ``on conflict``, ``= any(?)`` with a list); nothing here branches on the
engine."""

from __future__ import annotations

from typing import Any

from fm_lab.store.transaction import transaction

__all__ = ["first", "transaction"]


def first(result: Any) -> Any:
    """The first row of a result (None if empty), consuming the result."""
    rows = result.fetchall()
    return rows[0] if rows else None
