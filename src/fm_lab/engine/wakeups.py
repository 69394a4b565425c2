"""Waits that are due: suspensions whose timeout has expired (approval, user_input,
wait_for_event with ``timeout_s``) and suspended sleeps whose wake-up time has come. Both are
rows of ``suspensions`` with an ``expires_at``; resuming the run applies them
(:func:`fm_lab.engine.resuming.expired_resumes`).

Only one process fires a store's due waits at a time: it holds ``<store>.journal/timer.lock``
(``flock``) while it looks and resumes, so two processes' timers never both resume a run.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fm_lab.store.base import JOURNAL, SQL, has, journal_dir, sql_store
from fm_lab.store.errors import StoreLockedError
from fm_lab.store.journal import RunLockedError

if TYPE_CHECKING:
    import duckdb

    from fm_lab.engine.run import Run
    from fm_lab.store.base import RunStore

_DUE_SQL = (
    "select s.run_id, extract(epoch from min(s.expires_at))::float8 from suspensions s "
    "join runs r on r.run_id = s.run_id "
    "where s.resumed_at is null and s.expires_at is not null and r.status = 'suspended' "
    "group by s.run_id"
)
_memory_locks: dict[int, threading.Lock] = {}


def due_runs(store: RunStore, now: float | None = None) -> tuple[list[str], float | None]:
    """The top-level runs with a due wait (oldest first), and when the next wait falls due
    (None: no timed wait). One query; another one only when a child run's wait is due.
    Raises :class:`StoreLockedError` at once if another process has the file."""
    now = time.time() if now is None else now
    if not has(store, SQL):
        return _due_from_pending(store, now)
    if has(store, JOURNAL) and not os.path.exists(store.path):
        return [], None  # nothing stored yet
    with sql_store(store, "timers").connection(timeout_s=0) as con:
        rows = con.execute(_DUE_SQL).fetchall()
        due = sorted((float(at), run_id) for run_id, at in rows if float(at) <= now)
        later = [float(at) for _run_id, at in rows if float(at) > now]
        roots: list[str] = []
        for _at, run_id in due:
            root = _root(con, run_id)
            if root is not None and root not in roots:
                roots.append(root)
    return roots, min(later, default=None)


def _root(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The top-level run of ``run_id`` if it is suspended (a live or finished parent has
    nothing to resume), else None."""
    while True:
        row = con.execute("select parent_run_id, status from runs where run_id = ?",
                          [run_id]).fetchone()
        if row is None:
            return None
        parent, status = row
        if parent is None:
            return run_id if status == "suspended" else None
        run_id = parent


def _due_from_pending(store: RunStore, now: float) -> tuple[list[str], float | None]:
    """:func:`due_runs` through the store protocol alone (stores without SQL)."""
    waits: dict[str, float] = {}
    for row in store.pending_rows():
        if row["expires_at"] is not None:
            at = row["expires_at"].timestamp()
            waits[row["run_id"]] = min(at, waits.get(row["run_id"], at))
    roots: list[str] = []
    for run_id, _at in sorted(((r, at) for r, at in waits.items() if at <= now),
                              key=lambda item: item[1]):
        while (parent := store.load_run(run_id).parent_run_id) is not None:
            run_id = parent
        if store.run_status(run_id) == "suspended" and run_id not in roots:
            roots.append(run_id)
    return roots, min((at for at in waits.values() if at > now), default=None)


@contextlib.contextmanager
def firing(store: RunStore) -> Iterator[bool]:
    """Hold the store's timer lock for the block; yields False (at once) if another process
    or timer holds it."""
    folder = journal_dir(store)
    if folder is None:
        lock = _memory_locks.setdefault(id(store), threading.Lock())
        got = lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()
        return
    fd = os.open(folder / "timer.lock", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def fire_due(store: RunStore) -> tuple[list[Run], float | None]:
    """Resume every top-level run whose wait is due, skipping live ones (another process
    resumes or runs them). Returns the resumed runs and when the next wait falls due; nothing
    when another process is firing this store's waits or has the file."""
    from fm_lab.engine.api import resume

    resumed: list[Run] = []
    with firing(store) as mine:
        if not mine:
            return resumed, None
        try:
            due, next_at = due_runs(store)
        except StoreLockedError:
            return resumed, None
        for run_id in due:
            if store.run_is_live(run_id):
                continue
            try:
                resumed.append(resume(run_id, store=store, wait_s=0.0))
            except RunLockedError:
                continue  # it came alive in the meantime
            except Exception:  # one broken run must not keep the others waiting
                logging.getLogger("fm_lab").warning("resuming the due run %s failed", run_id,
                                                    exc_info=True)
    return resumed, next_at
