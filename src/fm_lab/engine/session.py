"""What every runner of one run shares: the recorder (journal + ingestion), committed results,
journaled steps, resume data and the cancel signal. Nested runners (foreach bodies, parallel
branches) write into the same journal under their path prefix."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from fm_lab.engine.committer import Committer, writer
from fm_lab.store.codec import NotSerialisableError, dumps
from fm_lab.store.errors import StoreLockedError
from fm_lab.tracing.redact import redactor
from fm_lab.tracing.spans import SpanContext, new_trace_id

if TYPE_CHECKING:
    from collections.abc import Callable

    from fm_lab.engine.cache import NodeCache
    from fm_lab.nodes.registry import NodeRegistry
    from fm_lab.store.base import RunStore
    from fm_lab.store.journal import Journal
    from fm_lab.store.records import JournalRecord, StoredNode

INGEST_EVERY_RECORDS = 20_000
INGEST_EVERY_S = 2.0
INGEST_FIRST_S = 0.25  # a run still going after this shows in runs() of other processes
_PATH_SEPARATORS = ("/", "[", ".", "#")
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
        self, store: RunStore, run_id: str, journal: Journal | None, seq: int,
        ingested_once: bool,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.journal = journal
        self.seq = seq
        self.unflushed: list[JournalRecord] = []
        self.unflushed_texts: dict[int, bytes] = {}  # span records' journal text, by seq
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
            if text is not None and record.get("k") == "span":
                self.unflushed_texts[self.seq] = text
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

    async def aflush(self, wait: bool) -> bool:
        """:meth:`flush` on a writer thread (the loop goes on meanwhile), after the periodic
        ingest under way, if any. Inline when this thread holds the store (a batch sweep):
        a writer thread would wait for it, and it for the writer."""
        if self._ingesting is not None:
            await asyncio.wait([self._ingesting])
        if self.store.held_here():
            return self.flush(wait)
        return await asyncio.get_running_loop().run_in_executor(writer(), self.flush, wait)

    def flush(self, wait: bool) -> bool:
        """Ingest into DuckDB; False when the file is busy (the journal keeps the records)."""
        with self._flush_lock:
            return self._flush(wait)

    def _flush(self, wait: bool) -> bool:
        self.last_ingest = time.monotonic()
        with self._lock:
            batch, self.unflushed = self.unflushed, []
            texts, self.unflushed_texts = self.unflushed_texts, {}
        if not batch:
            return True
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


class RunSession:
    """Shared by the root runner of a run and every nested runner inside it."""

    def __init__(
        self,
        *,
        store: RunStore,
        run_id: str,
        journal: Journal | None,
        registry: NodeRegistry,
        request_context: dict[str, Any] | None,
        committed: dict[str, StoredNode] | None = None,
        steps: dict[str, Any] | None = None,
        resume: dict[str, Any] | None = None,
        workflow_id: str | None = None,
        trace: tuple[str, str | None] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        cache: NodeCache | None = None,
        journal_seq: int = 0,
    ) -> None:
        """``journal_seq``: the last record already stored (a resumed run goes on from it)."""
        self.store = store
        self.on_event = on_event
        self.cache = cache
        self.run_id = run_id
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self.recorder = Recorder(store, run_id, journal, journal_seq,
                                 ingested_once=journal_seq > 0, loop=self.loop)
        self.registry = registry
        self.request_context = request_context if request_context is not None else {}
        self.committed = committed or {}
        self.steps = steps or {}
        self.resume = dict(resume or {})
        self.abort = asyncio.Event()
        self.cancel_requested = False
        self.wake: asyncio.Event | None = None  # the root loop's wake-up event
        self.body_cache: dict[Any, Any] = {}  # plans and node types of bodies, per run
        self.workflow_id = workflow_id
        self.trace_id, self.parent_span_id = trace if trace else (new_trace_id(), None)
        self.workflow_span = SpanContext(  # one workflow span per run, across resumes
            self.trace_id, hashlib.sha1(run_id.encode()).hexdigest()[:16], run_id,
            self.recorder.append, workflow_id
        )

    def emit(self, event: dict[str, Any]) -> None:
        """Tell the ``on_event`` listener (a widget, a progress bar) what just happened; a
        listener that raises is logged and never breaks the run."""
        if self.on_event is None:
            return
        event["run_id"] = self.run_id
        try:
            self.on_event(event)
        except Exception:
            logging.getLogger("fm_lab").warning("on_event listener failed", exc_info=True)

    def emit_node(self, path: str, node_id: str, status: str,
                  duration_ms: float | None = None, error: dict[str, Any] | None = None,
                  **extra: Any) -> None:
        """:meth:`emit` a node event; costs nothing when nobody listens (a hot path)."""
        if self.on_event is not None:
            self.emit({"type": "node", "path": path, "node_id": node_id, "status": status,
                       "duration_ms": duration_ms, "error": error, **extra})

    def has_resume(self, path: str) -> bool:
        """True when resume data waits for ``path`` or a path inside it."""
        if path in self.resume:
            return True
        return any(
            key.startswith(path) and key[len(path)] in _PATH_SEPARATORS
            for key in self.resume
            if len(key) > len(path)
        )

    def cancel(self) -> None:
        """Ask the run to stop: nodes see ``ctx.abort`` set and running tasks are cancelled.
        Safe to call from any thread (a notebook cell while the run is on a worker thread)."""
        self.cancel_requested = True
        try:
            same_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            same_loop = False
        if same_loop or self.loop is None or self.loop.is_closed():
            self._wake_up()
        else:
            self.loop.call_soon_threadsafe(self._wake_up)

    def _wake_up(self) -> None:
        self.abort.set()
        if self.wake is not None:
            self.wake.set()
