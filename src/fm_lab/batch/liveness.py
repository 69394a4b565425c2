"""Whether the process running a batch item is alive, so that an item a killed process left
``running`` reads as ``interrupted``.

While it runs an item, the process holds a lock keyed by the item's ``run_id``: on a
PostgreSQL store the run-lock session's advisory lock (the server drops it when the process
dies, see :mod:`fm_lab.store.pg_locks`), on a DuckDB file an ``flock`` on
``<store>.batches/<batch_id>/running/<run_id>.lock`` (the kernel drops it when the process
dies), and in every case an entry in this process's own table (all a memory store has)."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fm_lab.store.ids import id_path

if TYPE_CHECKING:
    from fm_lab.batch.records import Item
    from fm_lab.store.base import RunStore

INTERRUPTED = "interrupted"
_LOCK = threading.Lock()
_HELD: dict[tuple[str, str], int | None] = {}  # (store, run_id) -> the lock file's fd


class _RunLocks(Protocol):
    def acquire(self, run_id: str) -> None: ...
    def release(self, run_id: str) -> None: ...
    def live(self, run_id: str) -> bool: ...


def _server_locks(store: RunStore) -> _RunLocks | None:
    locks: Any = getattr(store, "locks", None)
    return locks if callable(getattr(locks, "live", None)) else None


def _lock_file(store: RunStore, item: Item) -> Path | None:
    from fm_lab.store.base import shard_dir

    base = None if store.memory else shard_dir(store)
    if base is None:
        return None
    return id_path(id_path(base, item.batch_id, what="batch id") / "running", item.run_id,
                   ".lock")


def hold(store: RunStore, item: Item) -> None:
    """Mark ``item`` as run by this process (until :func:`release`)."""
    key = (store.path, item.run_id)
    with _LOCK:
        if key in _HELD:
            return
        locks = _server_locks(store)
        fd = None
        if locks is not None:
            locks.acquire(item.run_id)
        elif (path := _lock_file(store, item)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RuntimeError(f"batch {item.batch_id!r} item {item.key!r} is being run "
                                   "by another live process") from None
        _HELD[key] = fd


def release(store: RunStore, item: Item) -> None:
    """This process no longer runs ``item``."""
    key = (store.path, item.run_id)
    with _LOCK:
        if key not in _HELD:
            return
        fd = _HELD.pop(key)
        locks = _server_locks(store)
        if locks is not None:
            locks.release(item.run_id)
        elif fd is not None:
            path = _lock_file(store, item)
            if path is not None:
                path.unlink(missing_ok=True)
            os.close(fd)


def is_live(store: RunStore, item: Item) -> bool:
    """True while some process (this one included) runs ``item``."""
    with _LOCK:
        if (store.path, item.run_id) in _HELD:
            return True
    locks = _server_locks(store)
    if locks is not None:
        return locks.live(item.run_id)
    path = _lock_file(store, item)
    if path is None:
        return False  # a memory store: only this process could run it
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
