"""A run's journal on a PostgreSQL store: each commit is one transaction into the run tables.

There is no local file: a record is durable once its transaction commits on the server, where
every other process can read it and recover the run. Records queued together (nodes that
finish together) share one commit, as the file journal's lines share one ``fsync``; the
engine's group commit (:mod:`fm_lab.store.committer`) works unchanged. The run is held by an
advisory lock (:mod:`fm_lab.store.pg_locks`) from opening (a new run: from its start's commit,
which takes it) to :meth:`PgJournal.close` (or its end's commit, which gives it up).

Every commit stores only while this process's lock session holds the run (checked in the
commit's own transaction, or made on that session, which ends with the lease). When the session
ended under the run (the server restarted, the backend was terminated) or the connection broke,
the commit takes the lock again on a new session and retries, for up to :data:`RECONNECT_S`, as
long as nobody else took the run meanwhile (or the run shows this process's own retried batch
stored: an end whose reply was lost); if somebody did, the run is lost to this process and it
stores nothing more of it. A new run's first commit, which takes the run, retries by taking it
again. A commit that fails otherwise (a constraint, a value the server refuses) fails the run:
the failure is sticky, as a failed ``fsync`` is for a file journal, and only the run's end
(status ``failed`` and why) is still stored, after what was committed before.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from fm_lab.store.codec import dumps
from fm_lab.store.ids import RunIdInUseError
from fm_lab.store.journal import JournalError, RunLockedError, encode_record
from fm_lab.store.pg_rows import NodeRows, queued_rows

if TYPE_CHECKING:
    from fm_lab.store.pg_store import PostgresStore
    from fm_lab.store.records import JournalRecord, NodeRecord

# how long a commit keeps trying while the server cannot be reached (a restart takes seconds)
RECONNECT_S = float(os.environ.get("FM_LAB_PG_RECONNECT_S", "30"))


class LeaseMissingError(Exception):
    """A commit found this process's lock session not holding the run (nothing stored)."""


class RunLostError(JournalError):
    """Another process took the run while this one's lease had lapsed: this process stores
    nothing more of it."""


def one_line(exc: BaseException, url: str, path: str) -> str:
    """``exc`` as one line, the store's URL (with its password) replaced by ``path``."""
    text = str(exc).strip().replace(url, path)
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class PgJournal:
    """The journal of one run of a :class:`~fm_lab.store.pg_store.PostgresStore`."""

    ingests = True  # a commit stores the records in the run tables
    created = False  # never "missing": nothing lives outside the server

    def __init__(self, store: PostgresStore, run_id: str, new: bool = False) -> None:
        self.store = store
        self.run_id = run_id
        # a new run is taken by its first commit (its start), in the same round trip; any
        # other is taken now, after the commit under way of its last holder, if any, ended
        self._taken = not new
        if not new:
            store.locks.acquire(run_id)
            try:
                store.settle(run_id)
            except BaseException:
                store.locks.release(run_id)
                raise
        self._pending: list[JournalRecord] = []
        self._texts: dict[int, bytes] = {}
        self._rows: dict[int, NodeRows] = {}  # queued node records' rows, by seq
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self.queued = 0
        self.durable = 0
        self.failure: JournalError | None = None
        self._failed_seq = 0  # records up to this seq were in the commit that failed
        self._ended = False  # the run's end is stored: nothing to hold it for
        self._closed = False

    def __repr__(self) -> str:
        return f"PgJournal({self.run_id!r})"

    def append(self, record: JournalRecord | dict[str, Any]) -> bytes | None:
        """Queue ``record`` (durable once :meth:`commit` returns); returns its JSON text, or
        None for a node record, whose rows are made here instead and kept for the commit
        (the record as it is now: both tables store the same). A payload that cannot be
        stored is refused here, not at commit (``NotSerialisableError``); the engine fills a
        node record's other fields with names and numbers."""
        kind = record.get("k")
        body: bytes | None = None
        if kind == "node":  # its payloads by the journal's encoder, once: the commit's rows
            node = cast("NodeRecord", record)
            rows = queued_rows(self.run_id, node)
            if node.get("events"):
                dumps(node["events"])
        else:
            body = encode_record(record)
        with self._lock:
            self._pending.append(cast("JournalRecord", record))
            if kind == "span":
                assert body is not None
                self._texts[int(record["seq"])] = body
            elif kind == "node":
                self._rows[int(record["seq"])] = rows
            self.queued += 1
        return body

    @property
    def pending(self) -> int:
        """Records queued and not yet committed."""
        return self.queued - self.durable

    def commit(self) -> None:
        """Store every queued record in one transaction (any thread). Raises
        :class:`JournalError` if that fails (the records stay queued), and for every commit
        after such a failure, except the one that stores the run's end (see the module)."""
        with self._commit_lock:
            if self.failure is not None:
                self._store_end()
                return
            with self._lock:
                if not self._pending:
                    return
                if self._closed:
                    raise JournalError(errno.EBADF, f"the journal of run {self.run_id} is "
                                       "closed")
                batch, self._pending = self._pending, []
                texts, self._texts = self._texts, {}
                count = self.queued
            try:
                self._store(batch, texts)
            except Exception as exc:
                with self._lock:
                    self._pending[:0] = batch
                    self._texts.update(texts)
                if isinstance(exc, RunLockedError | RunIdInUseError):  # a new run another
                    raise  # process holds or started: nothing is stored, nothing failed
                self._failed_seq = int(batch[-1]["seq"])
                self.failure = exc if isinstance(exc, RunLostError) else JournalError(
                    errno.EIO, f"storing run {self.run_id} in {self.store.path} failed "
                    f"({one_line(exc, self.store.url, self.store.path)}): its last records "
                    "are not stored")
                raise self.failure from exc
            with self._lock:
                for record in batch:
                    self._rows.pop(int(record["seq"]), None)
            self.durable = count
            self._ended = self._ended or batch[-1]["k"] == "run"  # the end comes last

    def _store(self, batch: list[JournalRecord], texts: dict[int, bytes]) -> None:
        """Ingest ``batch`` under this process's lease, regaining a lapsed lease and retrying
        a lost connection for up to :data:`RECONNECT_S` (an ingest is idempotent by seq)."""
        import psycopg

        deadline = time.monotonic() + RECONNECT_S
        delay = 0.05
        while True:
            try:
                self._ingest(batch, texts)
                return
            except (LeaseMissingError, psycopg.OperationalError) as exc:
                if isinstance(exc, psycopg.OperationalError) and not _lost_connection(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                if self._taken:  # else the next try takes the run (a lost session held none)
                    with contextlib.suppress(psycopg.OperationalError):  # the server is not back
                        self._regain(through=int(batch[-1]["seq"]))

    def _ingest(self, batch: list[JournalRecord], texts: dict[int, bytes]) -> None:
        """One try at storing ``batch``. A new run's first commit takes the run with it, its
        last commit (its end) gives the run up with it, each in one round trip when it fits
        one; a commit between goes to the lock session when that is free (no lease check, no
        pooled connection: :meth:`RunLocks.write_held`), else to a pooled connection, whose
        statement checks the lease."""
        store = self.store
        if not self._taken:  # RunLockedError when another process or journal holds the run
            if store.ingest_taking(self.run_id, batch):
                self._taken = True
                return
            store.locks.acquire(self.run_id)
            self._taken = True
        rows = self._rows  # read here; another thread may add to it meanwhile (a new seq)
        if batch[-1]["k"] == "run":
            if not store.ingest_giving_up(self.run_id, batch, rows):
                store.ingest(self.run_id, batch, texts=texts, lease=store.locks.session_pid())
        elif not store.ingest_held(self.run_id, batch, rows):
            store.ingest(self.run_id, batch, texts=texts, lease=store.locks.session_pid())

    def _regain(self, through: int | None = None) -> None:
        """Hold the run again after the lock session ended, or raise :class:`RunLostError`
        when another process took it meanwhile (or ran it since). ``through``: the last seq
        of the batch being retried; stored already (its reply was lost), it shows this
        process's own end, not a takeover."""
        state = self.store.locks.regain(self.run_id)
        if state == "held" or (state == "taken" and self.store.still_owned(
                self.run_id, os.getpid(), socket.gethostname(), through)):
            return
        self.store.locks.release(self.run_id)
        raise RunLostError(
            errno.EBUSY, f"run {self.run_id} in {self.store.path} was taken over by another "
            "process while this one's lease had lapsed (the server restarted or ended its "
            "session): this process stopped writing it")

    def renew(self) -> bool:
        """Between commits (the engine's tick): take a lapsed lease again at once, so the run
        does not look free while it runs. False once the run is lost to another process (it
        then fails at its next commit: the engine stops it). Quiet while the server cannot
        be reached: the next commit waits for it."""
        import psycopg

        if not self._commit_lock.acquire(blocking=False):
            return True  # a commit under way checks the lease itself
        try:
            if self.failure is None and self._taken and not self._closed and not self._ended:
                self._regain()
        except RunLostError as exc:
            self.failure = exc
        except psycopg.OperationalError:
            pass
        finally:
            self._commit_lock.release()
        return not isinstance(self.failure, RunLostError)

    def _store_end(self) -> None:
        """After a failed commit: store the records queued since (the run's end) and skip the
        failed ones, unless the run was lost or the end cannot be stored either."""
        failure = self.failure
        assert failure is not None
        with self._lock:
            later = [r for r in self._pending if int(r["seq"]) > self._failed_seq]
            texts = {seq: text for seq, text in self._texts.items() if seq > self._failed_seq}
        if isinstance(failure, RunLostError) or not any(r["k"] == "run" for r in later):
            raise failure
        try:
            self._store(later, texts)
        except Exception as exc:
            raise failure from exc
        with self._lock:
            self._pending, self._texts, self._rows = [], {}, {}
            self.durable = self.queued

    def reset(self) -> None:
        """Nothing to empty: committed records are the run's rows."""

    def close(self, remove: bool = False) -> None:
        """Release the run (after a commit under way on another thread)."""
        with self._commit_lock:
            if self._closed:
                return
            self._closed = True
            if self._taken:  # not one another journal holds (a new run refused at its start)
                self.store.locks.release(self.run_id)


def _lost_connection(exc: BaseException) -> bool:
    """True for an error that means the session ended (a restart, a terminated backend, a
    broken network), not one of the statement's own."""
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(("08", "57P"))  # connection, shutdown
