"""An append-only, checksummed journal of node results: the durable checkpoint of a run.

One file per run, locked (``flock``) by the process that runs it, so a journal whose lock can
be taken belongs to a dead process. ``commit()`` writes every pending record with one
``write`` and, in ``fsync`` durability, one ``fsync``: records queued together share it
(group commit). Commits may run on any thread; they are serialised, so lines land in queue
order. Every line carries its record's CRC: a torn last line (a crash mid-write) is dropped,
and damage inside the file is found, reported and skipped (:func:`scan_journal`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from fm_lab.store.codec import dumpb, dumps
from fm_lab.store.errors import StoreError
from fm_lab.store.records import JournalRecord, NodeRecord, OtherRecord, SpanRecord

Durability = Literal["fsync", "process", "none"]


def encode_record(record: Mapping[str, Any]) -> bytes:
    """A record's journal text: span records (written by the thousand, and whose payloads are
    informative copies) with orjson, everything else with the standard encoder, which keeps
    what a resumed run reads back exactly (NaN stays NaN)."""
    return dumpb(record) if record.get("k") == "span" else dumps(record).encode()


_END_PREFIX = b'{"k":"run"'  # a run's end record, as encode_record writes it (compact JSON)
_TAIL = 65536  # bytes read at a time, from the end, to find a journal's last line

_here: set[Path] = set()  # journals this process has open (their lock is its own)
_here_lock = threading.Lock()


def open_here(path: Path) -> bool:
    """Whether this process has the journal at ``path`` open (a lock it holds itself)."""
    with _here_lock:
        return path in _here


def _forget_after_fork() -> None:
    global _here_lock
    _here_lock = threading.Lock()
    _here.clear()  # the parent's journals: the parent runs them


os.register_at_fork(after_in_child=_forget_after_fork)


def ends_run(path: Path) -> bool:
    """Whether the journal's last line is its run's end record (the run finished; the
    journal waits to be stored). False for a missing or empty file. Reads back from the end
    to the start of the last line (once, whatever its length), then that line's first bytes."""
    try:
        with open(path, "rb") as file:
            end = file.seek(0, os.SEEK_END)
            if end == 0:
                return False
            file.seek(end - 1)
            if file.read(1) != b"\n":
                return False  # torn, or still being written
            start, at = 0, end - 1  # the last line starts after the newline before ``at``
            while at > 0:
                size = min(_TAIL, at)
                file.seek(at - size)
                found = file.read(size).rfind(b"\n")
                if found >= 0:
                    start = at - size + found + 1
                    break
                at -= size
            file.seek(start)
            return file.read(9 + len(_END_PREFIX))[9:] == _END_PREFIX
    except OSError:
        return False


class RunLockedError(RuntimeError):
    """Another live process is running this run."""


class JournalDamagedError(StoreError):
    """A run's journal is damaged or missing, so resuming could re-run committed work; the
    run is unchanged until it is resumed with ``force=True``."""


class JournalError(OSError):
    """A write or fsync of the journal failed: its records may not be durable, and the journal
    takes no more commits (what an ``fsync`` error leaves on disk is unknown)."""


class RunJournal(Protocol):
    """What the engine needs of a run's journal: queue records, make them durable together
    (group commit), release the run. :class:`Journal` is a local file; a server store's
    journal (:mod:`fm_lab.store.pg_journal`) commits straight into its tables
    (``ingests`` True: the records need no later ingest)."""

    created: bool  # nothing of this run was journaled before (a new run, or a lost journal)
    queued: int
    durable: int
    ingests: bool

    def append(self, record: JournalRecord | dict[str, Any]) -> bytes | None: ...

    @property
    def pending(self) -> int: ...

    def commit(self) -> None: ...

    def close(self, remove: bool = False) -> None: ...


class Journal:
    """The journal of one run."""

    ingests = False  # its records go into the store by a later ingest

    def __init__(self, path: Path, durability: Durability = "fsync") -> None:
        self.path = path
        self.durability = durability
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()  # one commit at a time: lines stay in order
        self.queued = 0  # records appended so far
        self.durable = 0  # of which written (and fsynced): the first ``durable`` ones
        self.failure: JournalError | None = None
        flags = os.O_WRONLY | os.O_APPEND
        try:  # ``created``: the file did not exist (a journal that should be there is missing)
            self._fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            self.created = True
        except FileExistsError:
            self._fd = os.open(path, flags | os.O_CREAT, 0o644)
            self.created = False
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
            return
        with _here_lock:
            _here.add(path)

    def append(self, record: JournalRecord | dict[str, Any]) -> bytes:
        """Queue ``record`` (see :mod:`fm_lab.store.records`; span records come from
        :mod:`fm_lab.tracing` as plain dicts); it is durable once :meth:`commit` returns.
        Returns its JSON text as written (ingestion reuses a span record's instead of encoding
        it again)."""
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

    def reset(self) -> None:
        """Empty the file (its records are stored elsewhere); the lock is kept."""
        with self._commit_lock:
            with self._lock:
                self._pending.clear()
                self.durable = self.queued
            os.ftruncate(self._fd, 0)
            if self.durability == "fsync":
                os.fsync(self._fd)

    def keep_lock(self) -> int:
        """A duplicate of the journal's descriptor, sharing its lock: the run stays locked
        (live, to other processes) until this is closed too, after the journal is."""
        return os.dup(self._fd)

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
            with _here_lock:
                _here.discard(self.path)



def read_journal(path: Path, texts: dict[int, bytes] | None = None) -> list[JournalRecord]:
    """Every intact record of a journal (damaged lines are skipped, see :func:`scan_journal`).
    ``texts``, when given, receives each span record's JSON text by ``seq`` (for ingestion)."""
    scan = scan_journal(path)
    if texts is not None:
        texts.update(scan.texts)
    return scan.records


@dataclass
class Damage:
    """One damaged place in a journal: ``line`` (1-based), what is wrong, and the record
    numbers (``seq``) it may have destroyed (``last`` None: unknown, up to the end)."""

    line: int
    problem: str
    first: int
    last: int | None

    def loses_after(self, stored_seq: int) -> bool:
        """True when records the store does not have yet may be lost here."""
        return self.last is None or (self.last >= self.first and self.last > stored_seq)

    def describe(self) -> str:
        lost = (f"record {self.first}" if self.last == self.first
                else f"records from {self.first}" if self.last is None
                else f"records {self.first}-{self.last}" if self.last > self.first
                else "no record")
        return f"line {self.line}: {self.problem} ({lost} lost)"


@dataclass
class JournalScan:
    """What a journal holds: intact records in order, span texts, damage, and whether its
    last line was torn (a write cut short, as a crash or a full disk leaves it)."""

    records: list[JournalRecord] = field(default_factory=list)
    texts: dict[int, bytes] = field(default_factory=dict)
    damage: list[Damage] = field(default_factory=list)
    torn_tail: bool = False
    exists: bool = True

    def losses(self, stored_seq: int) -> list[Damage]:
        """Damage that may have destroyed records not yet in the store."""
        return [d for d in self.damage if d.loses_after(stored_seq)]

    def gap_before(self, stored_seq: int) -> Damage | None:
        """Records missing between what the store has and the journal's first record."""
        if self.records and self.records[0]["seq"] > stored_seq + 1:
            return Damage(1, "the journal starts after the stored records", stored_seq + 1,
                          self.records[0]["seq"] - 1)
        return None


def scan_journal(path: Path) -> JournalScan:
    """Read a journal line by line, checking each record's CRC and that record numbers follow
    one another. A damaged line is reported and skipped; intact records after it are kept
    (lines resynchronise at the next newline). A last line without its newline is a torn
    write: dropped, and noted in ``torn_tail``."""
    scan = JournalScan()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        scan.exists = False
        return scan
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail.strip(b"\0"):
        scan.torn_tail = True
    pending: Damage | None = None  # damage whose extent the next intact record tells
    last_seq: int | None = None
    for number, line in enumerate(lines, 1):
        record = _decode_line(line)
        if record is None:
            if pending is None:
                pending = Damage(number, _line_problem(line), (last_seq or 0) + 1, None)
            continue
        seq = record.get("seq")
        if not isinstance(seq, int):
            if pending is None:
                pending = Damage(number, "a record without a sequence number",
                                 (last_seq or 0) + 1, None)
            continue
        if pending is not None:
            pending.last = seq - 1
            scan.damage.append(pending)
            pending = None
        elif last_seq is not None and seq <= last_seq:
            scan.damage.append(Damage(number, f"record {seq} repeated out of order",
                                      last_seq + 1, last_seq))
            continue
        elif last_seq is not None and seq != last_seq + 1:
            scan.damage.append(Damage(number, "records missing", last_seq + 1, seq - 1))
        last_seq = seq
        scan.records.append(record)
        if record.get("k") == "span":
            scan.texts[seq] = line[9:]
    if pending is not None:
        scan.damage.append(pending)  # damage at the end: what it destroyed is unknown
    return scan


def _decode_line(line: bytes) -> JournalRecord | None:
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    if isinstance(record, dict) and "k" in record:
        return cast("JournalRecord", record)  # keys as records.py has them (never renamed)
    return None


def _line_problem(line: bytes) -> str:
    if len(line) < 10 or line[8:9] != b" ":
        return "not a journal record"
    try:
        int(line[:8], 16)
    except ValueError:
        return "not a journal record"
    return "checksum mismatch"


def split_records(
    records: Iterable[JournalRecord],
) -> tuple[list[NodeRecord], list[SpanRecord], list[OtherRecord]]:
    """Node records, span records and the rest (in order), in one pass."""
    nodes: list[NodeRecord] = []
    spans: list[SpanRecord] = []
    others: list[OtherRecord] = []
    for record in records:
        if record["k"] == "span":
            spans.append(record)
        elif record["k"] == "node":
            nodes.append(record)
        else:
            others.append(record)
    return nodes, spans, others


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def locked_elsewhere(path: Path) -> bool:
    """Whether another live process holds the journal (False if it is gone, its owner died,
    or it cannot be read). Probed with a shared lock on a read-only descriptor: a reader
    needs no write access to the store's folder."""
    fd = _lock_if_free(path, os.O_RDONLY, fcntl.LOCK_SH)
    if fd is None:
        return path.exists() and os.access(path, os.R_OK)
    os.close(fd)
    return False


@contextlib.contextmanager
def taken_if_dead(path: Path) -> Iterator[int | None]:
    """The journal's descriptor, locked, if its owner is gone (else None), for the block; the
    journal counts as this process's meanwhile (:func:`open_here`)."""
    fd = try_lock(path)
    if fd is None:
        yield None
        return
    with _here_lock:
        _here.add(path)
    try:
        yield fd
    finally:
        with _here_lock:
            _here.discard(path)
        os.close(fd)


def try_lock(path: Path) -> int | None:
    """Lock an existing journal if its owner is gone; returns the fd to close, or None."""
    return _lock_if_free(path, os.O_WRONLY, fcntl.LOCK_EX)


def _lock_if_free(path: Path, mode: int, lock: int) -> int | None:
    """A descriptor of ``path`` opened with ``mode`` and locked with ``lock`` at once, or
    None (the file is gone, a read-only probe cannot read it, or another process holds a
    conflicting lock)."""
    try:
        fd = os.open(path, mode)
    except FileNotFoundError:
        return None
    except PermissionError:
        if mode != os.O_RDONLY:
            raise
        return None
    try:
        fcntl.flock(fd, lock | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
