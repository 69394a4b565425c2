"""Parquet shards written by batch workers that never open the DuckDB file.

A Dask worker runs an item on a worker-local store and exports that run's rows of ``runs``,
``node_executions`` and ``spans`` to ``<store>.batches/<batch>/items/<item>/<table>.parquet``.
The folder of an item appears at once (written as ``<item>.tmp-*`` and renamed), so a reader
sees an item's three files or none. Each connection gets temp views ``all_<table>`` that union
the table with its shards; the query functions read those views.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

SHARDED_TABLES = ("runs", "node_executions", "spans")


def shard_glob(root: Path, table: str) -> str:
    """The glob of every shard of ``table`` under ``root`` (``<store>.batches``)."""
    return str(root / "*" / "items" / "*" / f"{table}.parquet")


def attach_views(con: duckdb.DuckDBPyConnection, root: Path | None) -> None:
    """(Re)create the temp views ``all_runs``, ``all_node_executions`` and ``all_spans``."""
    for table in SHARDED_TABLES:
        glob = shard_glob(root, table) if root is not None else None
        has_shards = glob is not None and root is not None and any(
            root.glob(f"*/items/*/{table}.parquet"))
        source = f"select * from {table}"
        if has_shards:
            quoted = str(glob).replace("'", "''")
            source += (f" union all by name select * from read_parquet('{quoted}', "
                       "union_by_name = true)")
        con.execute(f"create or replace temp view all_{table} as {source}")
