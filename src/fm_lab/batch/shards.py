"""Writing and reading one item's Parquet shard (a folder of ``runs``, ``node_executions`` and
``spans`` files, renamed into place whole)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.store.base import server_url, shard_dir
from fm_lab.store.codec import loads
from fm_lab.store.ids import id_path
from fm_lab.store.shards import SHARDED_TABLES

if TYPE_CHECKING:
    from fm_lab.store.base import RunStore, SqlStore


def batch_folder(store: SqlStore, batch_id: str) -> Path:
    """Where a Dask batch's shards go (``<store>.batches/<batch_id>``); for a server store,
    whose workers write into it directly, a scratch folder under ``$FM_LAB_HOME/batches``."""
    folder = shard_dir(store)
    if folder is None and server_url(store) is not None:
        from fm_lab.store.default import home

        folder = home() / "batches"
    if folder is None:
        raise ValueError("a Dask batch needs a store its workers can reach: a DuckDB file "
                         "(they write Parquet shards next to it) or a server store, not "
                         f"{store.path}")
    return id_path(folder, batch_id, what="batch id")


def item_dir(batch_dir: Path, run_id: str) -> Path:
    """Where the shard of the item whose run is ``run_id`` lives."""
    return id_path(batch_dir / "items", run_id)


def export_run(store: SqlStore, run_id: str, batch_dir: Path) -> Path:
    """Copy ``run_id`` (and its child runs) from ``store`` into the item's shard, atomically
    (see :func:`export_rows`), then drop those rows from ``store``."""
    match = ("run_id = ? or run_id like ?", [run_id, run_id + ".%"])
    target = export_rows(store, run_id, batch_dir, match)
    with store.connection() as con:
        for table in SHARDED_TABLES:
            con.execute(f"delete from {table} where {match[0]}", match[1])
    return target


def export_rows(store: SqlStore, name: str, batch_dir: Path,
                match: tuple[str, list[Any]] = ("true", [])) -> Path:
    """Write the rows of ``store`` that ``match`` (SQL, parameters) as the shard ``name``: the
    files go to ``<batch>/tmp/`` and the folder is renamed into ``items/`` whole; a shard that
    was there (a failed attempt) is swapped out."""
    import pyarrow.parquet as pq

    target = item_dir(batch_dir, name)
    tmp = id_path(batch_dir / "tmp", name, f"-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    with store.connection() as con:
        for table in SHARDED_TABLES:
            rows = con.sql(f"select * from {table} where {match[0]}", params=match[1])
            pq.write_table(rows.to_arrow_table(), tmp / f"{table}.parquet")
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = id_path(batch_dir / "tmp", name, f"-old-{uuid.uuid4().hex[:8]}")
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def stored_result(store: RunStore, run_id: str) -> dict[str, Any] | None:
    """:func:`read_result` for a server store, where workers store runs directly: the
    finished run (status, outputs, error, timings), or None when it is not stored or not
    finished."""
    from fm_lab.store.errors import RunNotFoundError

    try:
        snapshot = store.load_run(run_id)
    except RunNotFoundError:
        return None
    if snapshot.status in ("running", "suspended"):
        return None
    frame = store.node_executions(run_id)
    started = frame["started_at"].min() if not frame.empty else None
    ended = frame["ended_at"].max() if not frame.empty else None
    return {"run_id": run_id, "status": snapshot.status, "outputs": snapshot.outputs,
            "error": snapshot.error,
            "started": started.timestamp() if started is not None and started == started
            else None,
            "ended": ended.timestamp() if ended is not None and ended == ended else None}


def read_result(batch_dir: Path, run_id: str) -> dict[str, Any] | None:
    """The finished run stored in an item's shard (status, outputs, error, timings), or None
    when the item has no shard yet."""
    import pyarrow.parquet as pq

    path = item_dir(batch_dir, run_id) / "runs.parquet"
    if not path.exists():
        return None
    rows = [r for r in pq.read_table(path).to_pylist() if r["run_id"] == run_id]
    if not rows:
        return None
    row = rows[0]
    return {
        "run_id": run_id,
        "status": row["status"],
        "outputs": _json(row["outputs"]),
        "error": _json(row["error"]),
        "started": row["created_at"].timestamp() if row["created_at"] else None,
        "ended": row["ended_at"].timestamp() if row["ended_at"] else None,
    }


def _json(value: Any) -> Any:
    return loads(value) if isinstance(value, str) else value
