"""Whether a live process runs a notebook batch, so that an item a killed process left
``running`` reads as ``interrupted``.

While it runs items of a batch, a process holds the batch's lock (one per batch, not per
item: a Dask batch has every item in flight at once): on a PostgreSQL store an advisory lock
of the run-lock session, keyed ``batch:<batch_id>`` (the server drops it when the process
dies, see :mod:`fm_lab.store.pg_locks`), on a DuckDB file an ``flock`` on
``<store>.batches/<batch_id>/running.lock`` (the kernel drops it when the process dies), and
in every case a count in this process's own table (all a memory store has). A second process
running the same batch at the same time is refused."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fm_lab.store.ids import id_path
from fm_lab.store.journal import try_lock

if TYPE_CHECKING:
    from fm_lab.store.base import RunStore

INTERRUPTED = "interrupted"
_LOCK = threading.Lock()
_HELD: dict[tuple[str, str], tuple[int, int | None]] = {}  # (store, batch) -> (count, fd)


class _RunLocks(Protocol):
    def acquire(self, run_id: str) -> None: ...
    def release(self, run_id: str) -> None: ...
    def live(self, run_id: str) -> bool: ...


def _server_locks(store: RunStore) -> _RunLocks | None:
    locks: Any = getattr(store, "locks", None)
    return locks if callable(getattr(locks, "live", None)) else None


def _lock_file(store: RunStore, batch_id: str) -> Path | None:
    from fm_lab.store.base import shard_dir

    base = None if store.memory else shard_dir(store)
    return None if base is None else id_path(base, batch_id, what="batch id") / "running.lock"


def hold(store: RunStore, batch_id: str) -> None:
    """Mark ``batch_id`` as run by this process (until as many :func:`release` calls)."""
    key = (store.path, batch_id)
    with _LOCK:
        count, fd = _HELD.get(key, (0, None))
        if count == 0:
            fd = _acquire(store, batch_id)
        _HELD[key] = (count + 1, fd)


def _acquire(store: RunStore, batch_id: str) -> int | None:
    locks = _server_locks(store)
    if locks is not None:
        locks.acquire(f"batch:{batch_id}")
        return None
    path = _lock_file(store, batch_id)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"batch {batch_id!r} is being run by another live process") from None
    return fd


def release(store: RunStore, batch_id: str) -> None:
    """One :func:`hold` of ``batch_id`` by this process ends."""
    key = (store.path, batch_id)
    with _LOCK:
        count, fd = _HELD.get(key, (0, None))
        if count > 1:
            _HELD[key] = (count - 1, fd)
            return
        _HELD.pop(key, None)
        if count == 0:
            return
        locks = _server_locks(store)
        if locks is not None:
            locks.release(f"batch:{batch_id}")
        elif fd is not None:
            os.close(fd)


def is_live(store: RunStore, batch_id: str) -> bool:
    """True while some process (this one included) runs items of ``batch_id``."""
    with _LOCK:
        if (store.path, batch_id) in _HELD:
            return True
    locks = _server_locks(store)
    if locks is not None:
        return locks.live(f"batch:{batch_id}")
    path = _lock_file(store, batch_id)
    if path is None or not path.exists():
        return False  # a memory store (only this process could run it), or never run
    fd = try_lock(path)
    if fd is None:
        return True
    os.close(fd)  # closing drops the lock it took
    return False
