"""``Store.sql()`` reads and writes anything but the audit log, which is append-only.

DuckDB has no triggers, so the DuckDB store refuses, before running it, any statement other
than a query (SELECT, DESCRIBE, SHOW, SUMMARIZE) that names ``audit_log``: UPDATE, DELETE,
TRUNCATE, DROP, ALTER, INSERT, COPY, CREATE OR REPLACE, EXPLAIN ANALYZE, ... Statements are
told apart by DuckDB's own parser (:func:`duckdb.extract_statements`). This is a guard against
mistakes through fm_lab, not a wall: whoever can write the file can change it with any DuckDB
client, and the audit log's hash chain (``fm_lab.audit(verify=True)``) then shows where.
"""

from __future__ import annotations

import re

from fm_lab.store.errors import StoreError

_AUDIT_LOG = re.compile(r"\baudit_log\b", re.IGNORECASE)
_QUERIES = frozenset({"SELECT"})  # DuckDB parses DESCRIBE, SHOW and SUMMARIZE as SELECT


class AuditLogReadOnlyError(StoreError):
    """A SQL statement would change the append-only audit log."""


def refuse_audit_changes(query: str) -> None:
    """Raise :class:`AuditLogReadOnlyError` if a statement of ``query`` other than a query
    names the audit log (a query that DuckDB cannot parse is left to fail when run)."""
    if _AUDIT_LOG.search(query) is None:  # the common case costs one scan of the text
        return
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error:
        return
    for statement in statements:
        kind = statement.type.name
        if kind not in _QUERIES and _AUDIT_LOG.search(statement.query):
            raise AuditLogReadOnlyError(
                f"refused: a {kind} statement on audit_log; the audit log is append-only "
                "(fm_lab writes it; read it with fm_lab.audit() or a SELECT)")
