"""Parquet shards written by batch workers that never open the DuckDB file.

A Dask worker runs an item on a worker-local store and exports that run's rows of ``runs``,
``node_executions`` and ``spans`` to ``<store>.batches/<batch>/items/<item>/<table>.parquet``.
The folder of an item appears at once (written under ``<batch>/tmp/`` and renamed), so a
reader sees an item's three files or none. The query functions read the views ``all_<table>``;
a connection opened while shards exist gets temp views of the same names that add them.
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


def attach_views(con: duckdb.DuckDBPyConnection, root: Path | None, *,
                 stored: bool = True) -> None:
    """When shards exist under ``root``, shadow the stored views ``all_runs``,
    ``all_node_executions`` and ``all_spans`` (each ``select * from <table>``, migration 5)
    with temp views that add the shards; ``stored=False`` (a read-only file from before
    migration 5) makes plain temp views. Costs nothing on a store without Dask batches."""
    shards = root is not None and root.is_dir()
    for table in SHARDED_TABLES:
        source = f"select * from {table}"
        if shards and root is not None and any(root.glob(f"*/items/*/{table}.parquet")):
            quoted = shard_glob(root, table).replace("'", "''")
            source += (f" union all by name select * from read_parquet('{quoted}', "
                       "union_by_name = true)")
        elif stored:
            continue
        con.execute(f"create or replace temp view all_{table} as {source}")
