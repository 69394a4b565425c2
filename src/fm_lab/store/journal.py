"""An append-only, checksummed journal of node results: the durable checkpoint of a run.

One file per run, locked (``flock``) by the process that runs it, so a journal whose lock can
be taken belongs to a dead process. ``commit()`` writes every pending record with one
``write`` and, in ``fsync`` durability, one ``fsync``: records queued together share it
(group commit). Commits may run on any thread; they are serialised, so lines land in queue
order. A torn last line (a crash mid-write) is detected by its CRC and ignored.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from fm_lab.store.codec import dumpb, dumps

Durability = Literal["fsync", "process", "none"]


def encode_record(record: dict[str, Any]) -> bytes:
    """A record's journal text: span records (written by the thousand, and whose payloads are
    informative copies) with orjson, everything else with the standard encoder, which keeps
    what a resumed run reads back exactly (NaN stays NaN)."""
    return dumpb(record) if record.get("k") == "span" else dumps(record).encode()


class RunLockedError(RuntimeError):
    """Another live process is running this run."""


class JournalError(OSError):
    """A write or fsync of the journal failed: its records may not be durable, and the journal
    takes no more commits (what an ``fsync`` error leaves on disk is unknown)."""


class Journal:
    """The journal of one run."""

    def __init__(self, path: Path, durability: Durability = "fsync") -> None:
        self.path = path
        self.durability = durability
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()  # one commit at a time: lines stay in order
        self.queued = 0  # records appended so far
        self.durable = 0  # of which written (and fsynced): the first ``durable`` ones
        self.failure: JournalError | None = None
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise RunLockedError(
                f"run journal {path} is locked by another live process: that process is still "
                "running this run"
            ) from None
        if os.fstat(self._fd).st_ino != _inode(path):
            # recovery in another process removed the file between open and lock: start over
            os.close(self._fd)
            self.__init__(path, durability)  # type: ignore[misc]

    def append(self, record: dict[str, Any]) -> bytes:
        """Queue ``record``; it is durable once :meth:`commit` returns. Returns its JSON
        text as written (ingestion reuses a span record's instead of encoding it again)."""
        body = encode_record(record)
        line = b"%08x %s\n" % (zlib.crc32(body), body)
        with self._lock:
            self._pending.append(line)
            self.queued += 1
        return body

    @property
    def pending(self) -> int:
        """Records queued and not yet written."""
        return self.queued - self.durable

    def commit(self) -> None:
        """Write every queued record at once and make it durable (any thread). Raises
        :class:`JournalError` if that fails, and for every commit after such a failure."""
        with self._commit_lock:
            if self.failure is not None:
                raise self.failure
            with self._lock:
                if not self._pending:
                    return
                if self._fd < 0:
                    raise JournalError(errno.EBADF, f"the run journal {self.path} is closed")
                data = b"".join(self._pending)
                self._pending.clear()
                count = self.queued
            try:
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                if self.durability == "fsync":
                    os.fsync(self._fd)
            except OSError as exc:
                self.failure = JournalError(
                    exc.errno, f"writing the run journal {self.path} failed ({exc}): its "
                    "last records are not durable")
                raise self.failure from exc
            self.durable = count

    def close(self, remove: bool = False) -> None:
        """Release the lock (after a commit under way on another thread); ``remove`` deletes
        the file (its records are ingested)."""
        with self._commit_lock:
            if self._fd < 0:
                return
            if remove:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            os.close(self._fd)
            self._fd = -1



def read_journal(path: Path, texts: dict[int, bytes] | None = None) -> list[dict[str, Any]]:
    """Every intact record of a journal, stopping at the first torn or corrupt line.
    ``texts``, when given, receives each span record's JSON text by ``seq`` (for ingestion)."""
    records = []
    for body in _bodies(path):
        try:
            record = json.loads(body)
        except ValueError:
            break
        records.append(record)
        if texts is not None and record.get("k") == "span":
            texts[record["seq"]] = body
    return records


def split_records(
    records: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Node records, span records and the rest (in order), in one pass."""
    nodes: list[dict[str, Any]] = []
    spans: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for record in records:
        kind = record["k"]
        (spans if kind == "span" else nodes if kind == "node" else others).append(record)
    return nodes, spans, others


def _bodies(path: Path) -> Iterator[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data.split(b"\n"):
        if len(line) < 10 or line[8:9] != b" ":
            return
        body = line[9:]
        try:
            if int(line[:8], 16) != zlib.crc32(body):
                return
        except ValueError:
            return
        yield body


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def try_lock(path: Path) -> int | None:
    """Lock an existing journal if its owner is gone; returns the fd to close, or None."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
