"""A run's journal on a PostgreSQL store: each commit is one transaction into the run tables.

There is no local file: a record is durable once its transaction commits on the server, where
every other process can read it and recover the run. Records queued together (nodes that
finish together) share one commit, as the file journal's lines share one ``fsync``; the
engine's group commit (:mod:`fm_lab.store.committer`) works unchanged. The run is held by an
advisory lock (:mod:`fm_lab.store.pg_locks`) from opening to :meth:`PgJournal.close`.
"""

from __future__ import annotations

import errno
import threading
from typing import TYPE_CHECKING, Any, cast

from fm_lab.store.journal import JournalError, encode_record

if TYPE_CHECKING:
    from fm_lab.store.pg_store import PostgresStore
    from fm_lab.store.records import JournalRecord


class PgJournal:
    """The journal of one run of a :class:`~fm_lab.store.pg_store.PostgresStore`."""

    ingests = True  # a commit stores the records in the run tables
    created = False  # never "missing": nothing lives outside the server

    def __init__(self, store: PostgresStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        store.locks.acquire(run_id)
        self._pending: list[JournalRecord] = []
        self._texts: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self.queued = 0
        self.durable = 0
        self.failure: JournalError | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"PgJournal({self.run_id!r})"

    def append(self, record: JournalRecord | dict[str, Any]) -> bytes:
        """Queue ``record`` (durable once :meth:`commit` returns); returns its JSON text."""
        body = encode_record(record)  # refuses what cannot be stored, here, not at commit
        with self._lock:
            self._pending.append(cast("JournalRecord", record))
            if record.get("k") == "span":
                self._texts[int(record["seq"])] = body
            self.queued += 1
        return body

    @property
    def pending(self) -> int:
        """Records queued and not yet committed."""
        return self.queued - self.durable

    def commit(self) -> None:
        """Store every queued record in one transaction (any thread). Raises
        :class:`JournalError` if that fails (the records stay queued), and for every commit
        after such a failure."""
        with self._commit_lock:
            if self.failure is not None:
                raise self.failure
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
                self.store.ingest(self.run_id, batch, texts=texts)
            except Exception as exc:
                with self._lock:
                    self._pending[:0] = batch
                    self._texts.update(texts)
                self.failure = JournalError(
                    errno.EIO, f"storing run {self.run_id} in {self.store.path} failed "
                    f"({type(exc).__name__}: {exc}): its last records are not durable")
                raise self.failure from exc
            self.durable = count

    def reset(self) -> None:
        """Nothing to empty: committed records are the run's rows."""

    def close(self, remove: bool = False) -> None:
        """Release the run (after a commit under way on another thread)."""
        with self._commit_lock:
            if self._closed:
                return
            self._closed = True
            self.store.locks.release(self.run_id)
