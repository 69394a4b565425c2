"""The durable side of a run or a standalone trace: records go to the run's journal (group
commit, off the event loop) and, in batches, into the store, secrets masked first."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from fm_lab.store.codec import NotSerialisableError, dumps
from fm_lab.store.committer import Committer, writer
from fm_lab.store.errors import StoreLockedError
from fm_lab.tracing.redact import redactor

if TYPE_CHECKING:
    from collections.abc import Callable

    from fm_lab.store.base import RunStore
    from fm_lab.store.journal import RunJournal
    from fm_lab.store.records import JournalRecord

INGEST_EVERY_RECORDS = 20_000
INGEST_EVERY_S = 2.0
INGEST_FIRST_S = 0.25  # a run still going after this shows in runs() of other processes
_REDACTED_FIELDS = (
    "input",
    "output",
    "error",
    "attrs",
    "events",
    "payload",
    "result",
    "data",
    "inputs",
    "outputs",
    "state",
    "state_patch",
    "spec",
)


def _jsonable(value: Any) -> Any:
    """``value`` if it can be stored as JSON, else its ``repr`` (for span payloads)."""
    try:
        dumps(value)
    except NotSerialisableError:
        return repr(value)
    return value


class Recorder:
    """The durable side of a run: records go to the journal (group commit, off the event loop
    when a ``loop`` is given) and, in batches, into DuckDB."""

    def __init__(
        self, store: RunStore, run_id: str, journal: RunJournal | None, seq: int,
        ingested_once: bool,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.journal = journal
        self.seq = seq
        self.unflushed: list[JournalRecord] = []
        self.unflushed_texts: dict[int, bytes] = {}  # records' journal text, by seq (a
        # PostgreSQL journal keeps none for node records: it makes their rows instead)
        self.last_ingest = time.monotonic()
        self.ingested_once = ingested_once
        self._redact = redactor()
        self._lock = threading.Lock()  # spans end in worker threads too
        self._flush_lock = threading.Lock()  # ingests in order (journal_seq skips the older)
        self.committer = (
            Committer(journal, loop) if journal is not None and loop is not None else None
        )
        self._ingesting: asyncio.Future[bool] | None = None

    def append(self, record: JournalRecord | dict[str, Any]) -> None:
        """Queue ``record`` (secrets masked; durable at the next :meth:`commit`). Records are
        the kinds of :mod:`fm_lab.store.records`; span records come from
        :mod:`fm_lab.tracing` (a ``SpanSink``) as plain dicts."""
        self._mask(record, lambda value: value)
        with self._lock:
            self.seq += 1
            record["seq"] = self.seq
            try:
                text = self._encode(record)
            except NotSerialisableError:
                if record.get("k") != "span":
                    raise
                # a span never fails its node for its payload: what JSON cannot hold is repr'd
                self._mask(record, _jsonable)
                text = self._encode(record)
            if text is not None:  # spans' text spares encoding them again; every record's
                self.unflushed_texts[self.seq] = text  # lets a held store queue the run
            self.unflushed.append(cast("JournalRecord", record))
        if self.committer is not None:
            self.committer.soon()  # durable within one write and fsync, nobody has to ask

    def _mask(self, record: JournalRecord | dict[str, Any],
              prepare: Callable[[Any], Any]) -> None:
        fields = cast("dict[str, Any]", record)  # the payload keys of every kind
        redact = self._redact
        for key in _REDACTED_FIELDS:
            value = fields.get(key)
            if value is not None:
                fields[key] = redact(prepare(value))

    def _encode(self, record: JournalRecord | dict[str, Any]) -> bytes | None:
        """Journal ``record``, returning its text (a memory store only checks it encodes)."""
        if self.journal is not None:
            return self.journal.append(record)
        dumps(record)  # a memory store must refuse what a journal would
        return None

    def commit(self) -> None:
        """Make every queued record durable (one write, one fsync) on this thread."""
        if self.journal is not None:
            self.journal.commit()

    async def durable(self) -> None:
        """Wait until every record queued so far is durable (the write and fsync run off the
        event loop); raises :class:`~fm_lab.store.journal.JournalError` if they failed."""
        if self.committer is not None:
            await self.committer.durable()
        else:
            self.commit()

    async def aflush(self, wait: bool, final: bool = False) -> bool:
        """:meth:`flush` on a writer thread (the loop goes on meanwhile), after the periodic
        ingest under way, if any. Inline when this thread holds the store (a batch sweep):
        a writer thread would wait for it, and it for the writer; and into a memory store,
        whose ingest is a few milliseconds of CPU (handing it to a thread and back cost more);
        and when the journal's commits stored everything already (a server store), which
        leaves nothing to do but forget the records. ``final``: the run's last flush, which
        a held store may queue to store with other runs (False: the journal keeps them)."""
        if self._ingesting is not None:
            await asyncio.wait([self._ingesting])
        journal = self.journal
        if (self.store.held_here() or self.store.memory
                or (journal is not None and journal.ingests and not journal.pending)):
            return self.flush(wait, final)
        return await asyncio.get_running_loop().run_in_executor(writer(), self.flush, wait, final)

    def flush(self, wait: bool, final: bool = False) -> bool:
        """Ingest into DuckDB; False when the file is busy or, ``final``, when the store
        queued the records to store them with other runs (the journal keeps them)."""
        with self._flush_lock:
            return self._flush(wait, final)

    def _flush(self, wait: bool, final: bool = False) -> bool:
        self.last_ingest = time.monotonic()
        with self._lock:
            batch, self.unflushed = self.unflushed, []
            texts, self.unflushed_texts = self.unflushed_texts, {}
        if not batch:
            return True
        if self.journal is not None and self.journal.ingests:  # stored by its commits
            self.commit()
            self.ingested_once = True
            return True
        if final and self.journal is not None and self.store.defer(self.run_id, batch, texts,
                                                                   self.journal):
            self.ingested_once = True
            return False
        try:
            self.store.ingest(self.run_id, batch, wait=wait, texts=texts)
        except BaseException as exc:
            with self._lock:
                self.unflushed[:0] = batch
                self.unflushed_texts.update(texts)
            if not isinstance(exc, StoreLockedError) or self.journal is None:
                raise
            if wait:
                self.store.recover_later()
            return False
        self.ingested_once = True
        return True

    def interval(self) -> float:
        return INGEST_EVERY_S if self.ingested_once else INGEST_FIRST_S

    def maybe_ingest(self) -> None:
        """Start an ingest on a writer thread when enough records or time have gathered and
        none is under way (it never waits for the file; a failure is logged, the journal
        keeps the records for the next one)."""
        if self._ingesting is not None or not self.unflushed or (
            len(self.unflushed) < INGEST_EVERY_RECORDS
            and time.monotonic() - self.last_ingest < self.interval()
        ):
            return
        if self.store.held_here():  # see aflush
            self._ingest()
            return
        self._ingesting = asyncio.get_running_loop().run_in_executor(writer(), self._ingest)
        self._ingesting.add_done_callback(self._ingested)

    def _ingest(self) -> bool:
        self.commit()  # DuckDB gets nothing the journal does not have
        return self.flush(wait=False)

    def _ingested(self, future: asyncio.Future[bool]) -> None:
        self._ingesting = None
        error = None if future.cancelled() else future.exception()
        if error is not None:
            logging.getLogger("fm_lab").warning(
                "periodic ingest of %s failed", self.run_id, exc_info=error)
