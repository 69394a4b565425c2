"""Store files attached to one in-process DuckDB instance while they are in use.

A store opens its file only for the length of an operation, so that other processes can take
it in between. Opening a DuckDB database costs ~11 ms (a new instance: thread pool, catalog);
attaching a file to a live instance costs well under a millisecond. Attaching is also the only
way to give a file a row group size (:data:`ROW_GROUP_SIZE`). Every :class:`~fm_lab.store.Store`
on the same file in this process shares its attachment, as ``duckdb.connect`` shares one
instance per path; the file is detached (its lock released) when the last lease ends.

Detaching does not checkpoint unless the write-ahead log has grown past
:data:`WAL_CHECKPOINT_BYTES`. A checkpoint rewrites every touched table's unfinished row group
(~13 ms for a short run, growing with the store), while a short run adds ~10 KB to the WAL,
which the next attach replays (a few ms at the threshold below). Every commit is durable in
the WAL either way; the file ``<store>.wal`` beside the store is part of it. At the
interpreter's exit the WAL of the files this process wrote is folded in (unless another process
has the file by then, or the exit has spent :data:`EXIT_FOLD_S` on it), so a store at rest is
usually one file again.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

# Rows per DuckDB row group in store files (DuckDB's default is 122,880). A transaction that
# appends a whole row group writes it straight into the file; a smaller remainder goes to the
# WAL, or to a checkpoint that rewrites the unfinished group. At this size an ingest of tens of
# thousands of spans writes each row about once, where the default rewrote a partly filled
# 122,880-row group at every commit (ingest 1.5-2x slower). Smaller groups also make the
# min/max zone maps on trace ids and times finer: they are what finds one trace's rows.
ROW_GROUP_SIZE = 16_384

# The WAL size past which the last lease checkpoints before detaching: a few short runs.
# Larger is worse: replaying the WAL at each attach costs more than the checkpoints it saves.
WAL_CHECKPOINT_BYTES = 32 * 1024
EXIT_FOLD_S = 1.0  # at most this long folding WALs in at exit (the rest are replayed later)


class AttachedReadOnlyError(RuntimeError):
    """A read-only store in this process has the file; a writer must wait for it."""

    holder = "a read-only Store in this process"


@dataclass
class _Attachment:
    alias: str
    read_only: bool
    leases: int = 0


_lock = threading.Lock()
_instance: duckdb.DuckDBPyConnection | None = None
_attached: dict[str, _Attachment] = {}
_written: set[str] = set()  # files this process attached for writing: folded in at exit


_inherited: list[duckdb.DuckDBPyConnection] = []


def _forget_after_fork() -> None:
    """A forked child starts afresh: the parent's DuckDB instance has no threads here and its
    file locks were not inherited. That instance is kept referenced, never destroyed: its
    destructor would join threads that only exist in the parent."""
    global _lock, _instance
    _lock = threading.Lock()
    if _instance is not None:
        _inherited.append(_instance)
    _instance = None
    _attached.clear()
    _written.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def lease(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the file at ``path``, attached if need be.
    Raises duckdb's ``IOException`` when another process holds the file, and
    :class:`AttachedReadOnlyError` for a writer while a read-only store here has it."""
    global _instance
    import duckdb

    with _lock:
        if _instance is None:
            _instance = duckdb.connect(":memory:")
            _instance.execute("set checkpoint_on_detach = 'DISABLED'")
        attachment = _attached.get(path)
        if attachment is None:
            attachment = _Attachment(_alias(path), read_only)
            _attach(_instance, path, attachment.alias, read_only)
            _attached[path] = attachment
            if not read_only:
                _written.add(path)
        elif attachment.read_only and not read_only:
            raise AttachedReadOnlyError(path)
        attachment.leases += 1
        try:
            con = _instance.cursor()
            con.execute(f"use {_identifier(attachment.alias)}")
        except BaseException:
            _release_locked(path)
            raise
        return con


def attached(path: str) -> bool:
    """Whether a store in this process has the file at ``path`` open now."""
    with _lock:
        return path in _attached


def attached_read_only(path: str) -> bool:
    """Whether a read-only store in this process has the file at ``path`` open now (a
    writer here must wait for it)."""
    with _lock:
        attachment = _attached.get(path)
        return attachment is not None and attachment.read_only


def _attach(instance: duckdb.DuckDBPyConnection, path: str, alias: str,
            read_only: bool) -> None:
    # TYPE DUCKDB: a foreign file (SQLite, ...) is refused, never auto-detected (which would
    # try to download a scanner extension)
    options = f"TYPE DUCKDB, ROW_GROUP_SIZE {ROW_GROUP_SIZE}" + (
        ", READ_ONLY" if read_only else "")
    instance.execute(f"attach {_literal(path)} as {_identifier(alias)} ({options})")


def release(path: str, con: duckdb.DuckDBPyConnection) -> None:
    """End a lease from :func:`lease`; the last one detaches the file (checkpointing it once
    its WAL passes :data:`WAL_CHECKPOINT_BYTES`), so other processes can have it."""
    try:
        con.close()
    finally:
        with _lock:
            _release_locked(path)


def _release_locked(path: str) -> None:
    attachment = _attached[path]
    attachment.leases -= 1
    if attachment.leases == 0:
        assert _instance is not None
        alias = _identifier(attachment.alias)
        if not attachment.read_only and _wal_bytes(path) > WAL_CHECKPOINT_BYTES:
            _instance.execute(f"checkpoint {alias}")
        _instance.execute(f"detach {alias}")  # on error: still attached
        del _attached[path]


def fold_wal_at_exit() -> None:
    """Checkpoint the files this process wrote whose WAL is not empty, each if it is free
    (a file another process has, or one still leased here, keeps its WAL: nothing is lost)."""
    deadline = time.monotonic() + EXIT_FOLD_S
    with _lock:
        if _instance is None:
            return
        for path in sorted(_written - set(_attached)):
            if time.monotonic() > deadline:
                break
            if _wal_bytes(path) == 0:
                continue
            name = _alias(path)
            alias = _identifier(name)
            try:
                _attach(_instance, path, name, read_only=False)
            except Exception:  # busy elsewhere, gone or damaged: leave it be
                continue
            with contextlib.suppress(Exception):  # else the WAL stays, replayed at next open
                _instance.execute(f"checkpoint {alias}")
            with contextlib.suppress(Exception):  # the exit goes on whatever DuckDB says
                _instance.execute(f"detach {alias}")
        _written.clear()


atexit.register(fold_wal_at_exit)


def _wal_bytes(path: str) -> int:
    """The size of the store's write-ahead log (0 when it has none)."""
    try:
        return os.path.getsize(path + ".wal")
    except OSError:
        return 0


def _alias(path: str) -> str:
    """The catalog name of a file: its stem, as ``duckdb.connect`` names it, made unique."""
    stem = Path(path).stem or "store"
    taken = {a.alias.lower() for a in _attached.values()} | {"memory", "system", "temp"}
    alias, n = stem, 1
    while alias.lower() in taken:
        n += 1
        alias = f"{stem}_{n}"
    return alias


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
