"""Where evals keep their rows: the ``eval_*`` tables of a SQL store (DuckDB or PostgreSQL,
migration 11, one SQL for both), or plain lists beside a memory store. Callers read and write
columns through :class:`Tables` and never see which."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.base import RunStore

COLUMNS: dict[str, tuple[str, ...]] = {
    "eval_datasets": ("name", "version", "created_at", "created_by", "description",
                      "row_count", "content_hash"),
    "eval_examples": ("dataset", "version", "position", "example_id", "inputs", "expected",
                      "metadata", "source_run_id"),
    "eval_experiments": ("experiment_id", "name", "dataset", "dataset_version", "target",
                         "variants", "scorers", "status", "created_at", "created_by",
                         "finished_at"),
    "eval_results": ("experiment_id", "variant", "position", "example_id", "output", "error",
                     "latency_ms", "input_tokens", "output_tokens", "cached_tokens", "cost_usd",
                     "model", "run_id", "trace_id", "span_id"),
    "eval_scores": ("experiment_id", "variant", "position", "run_id", "trace_id", "span_id",
                    "scorer", "value", "passed", "reason", "input_tokens", "output_tokens",
                    "cost_usd", "scored_at"),
}
_TYPES = {"version": "int32", "position": "int32", "row_count": "int32",
          "dataset_version": "int32", "latency_ms": "float64", "input_tokens": "int64",
          "output_tokens": "int64", "cached_tokens": "int64", "cost_usd": "float64",
          "value": "float64", "passed": "bool", "created_at": "timestamp",
          "finished_at": "timestamp", "scored_at": "timestamp"}

Where = dict[str, Any]  # column -> value (a list or tuple: any of them)


class Tables(Protocol):
    """The eval tables of one store."""

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None: ...

    def delete(self, table: str, where: Where) -> None: ...

    def select(self, table: str, where: Where | None = None) -> pd.DataFrame: ...

    def update(self, table: str, values: dict[str, Any], where: Where) -> None: ...

    def batch(self) -> contextlib.AbstractContextManager[None]: ...


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _frame(table: str, rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(rows), columns=list(COLUMNS[table]))


def _clause(where: Where) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    for column, value in where.items():
        if column not in {c for cols in COLUMNS.values() for c in cols}:
            raise ValueError(f"unknown eval column {column!r}")
        if isinstance(value, (list, tuple)):
            if not value:
                parts.append("false")
                continue
            parts.append(f"{column} in ({', '.join('?' for _ in value)})")
            params.extend(value)
        elif value is None:
            parts.append(f"{column} is null")
        else:
            parts.append(f"{column} = ?")
            params.append(value)
    return (" where " + " and ".join(parts)) if parts else "", params


class SqlTables:
    """The eval tables of a DuckDB or PostgreSQL store."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._held: Any = None

    @contextlib.contextmanager
    def _con(self) -> Iterator[Any]:
        if self._held is not None:
            yield self._held
            return
        with self.store.connection() as con:
            yield con

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Every statement in the block in one transaction."""
        from fm_lab.store.transaction import transaction

        with self.store.connection() as con, transaction(con):
            self._held = con
            try:
                yield
            finally:
                self._held = None

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        from fm_lab.store.copy_io import write

        if not rows:
            return
        names = COLUMNS[table]
        arrays = {}
        for name in names:
            kind = _TYPES.get(name, "string")
            values = [row.get(name) for row in rows]
            arrays[name] = pa.array(values, pa.timestamp("us", tz="UTC") if kind == "timestamp"
                                    else pa.bool_() if kind == "bool" else
                                    pa.string() if kind == "string" else getattr(pa, kind)())
        with self._con() as con:
            write(con, table, pa.table(arrays))

    def delete(self, table: str, where: Where) -> None:
        clause, params = _clause(where)
        with self._con() as con:
            con.execute(f"delete from {table}{clause}", params)

    def update(self, table: str, values: dict[str, Any], where: Where) -> None:
        clause, params = _clause(where)
        sets = ", ".join(f"{column} = ?" for column in values)
        with self._con() as con:
            con.execute(f"update {table} set {sets}{clause}", [*values.values(), *params])

    def select(self, table: str, where: Where | None = None) -> pd.DataFrame:
        clause, params = _clause(where or {})
        with self._con() as con:
            frame: pd.DataFrame = con.execute(
                f"select {', '.join(COLUMNS[table])} from {table}{clause}", params).df()
        return frame


class MemoryTables:
    """The eval tables of a memory store: lists of rows in this process."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in COLUMNS}
        self.lock = threading.RLock()

    @staticmethod
    def _matches(row: dict[str, Any], where: Where) -> bool:
        return all(row.get(c) in v if isinstance(v, (list, tuple)) else row.get(c) == v
                   for c, v in where.items())

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        with self.lock:
            saved = {name: list(rows) for name, rows in self.rows.items()}
            try:
                yield
            except BaseException:
                self.rows = saved
                raise

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        with self.lock:
            self.rows[table].extend({c: row.get(c) for c in COLUMNS[table]} for row in rows)

    def delete(self, table: str, where: Where) -> None:
        with self.lock:
            self.rows[table] = [r for r in self.rows[table] if not self._matches(r, where)]

    def update(self, table: str, values: dict[str, Any], where: Where) -> None:
        with self.lock:
            for row in self.rows[table]:
                if self._matches(row, where):
                    row.update(values)

    def select(self, table: str, where: Where | None = None) -> pd.DataFrame:
        with self.lock:
            found = [dict(r) for r in self.rows[table] if self._matches(r, where or {})]
        frame = _frame(table, found)
        for column in COLUMNS[table]:
            if _TYPES.get(column) == "timestamp":
                import pandas as pd

                frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame


_MEMORY: weakref.WeakKeyDictionary[Any, MemoryTables] = weakref.WeakKeyDictionary()
_MEMORY_LOCK = threading.Lock()


def tables(store: RunStore | None = None) -> Tables:
    """The eval tables of ``store`` (default: the default store)."""
    from fm_lab.store.base import SQL, has

    if store is None:
        from fm_lab.store.default import default_store

        store = default_store()
    if has(store, SQL):
        return SqlTables(store)
    with _MEMORY_LOCK:
        found = _MEMORY.get(store)
        if found is None:
            found = _MEMORY[store] = MemoryTables()
        return found
