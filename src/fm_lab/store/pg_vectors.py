"""Whether a PostgreSQL store keeps vectors itself: the pgvector extension (``vector``) is
installed in its database, or can be (``create extension`` where the role may), and its
``vector`` type resolves on the store's ``search_path``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fm_lab.store.pg_sql import PgConnection

_log = logging.getLogger(__name__)
_EXTENSION_LOCK = 0x666D5F766563  # "fm_vec": one process creates the extension at a time


def enable_pgvector(con: PgConnection, *, create: bool) -> bool:
    """True when the ``vector`` type is usable on ``con``; with ``create``, install the
    extension first if the server offers it (a role without the right gets False, not an
    error: the store then has no ``vectors`` capability)."""
    if _usable(con):
        return True
    if not create:
        return False
    offered = con.execute("select 1 from pg_available_extensions where name = 'vector'"
                          ).fetchone()
    if offered is None:
        return False
    import psycopg

    try:
        with con.raw.transaction():
            con.execute("select pg_advisory_xact_lock(?)", [_EXTENSION_LOCK])
            con.execute("create extension if not exists vector")
    except psycopg.Error as exc:
        _log.info("pgvector is offered but cannot be created here: %s",
                  str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
        return False
    return _usable(con)


def _usable(con: PgConnection) -> bool:
    row = con.execute("select to_regtype('vector') is not null").fetchone()
    return bool(row and row[0])
