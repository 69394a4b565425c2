"""Traces outside workflow runs. An agent or LLM call made on its own, or a :func:`traced`
block, records its spans the way a run does: a :class:`~fm_lab.tracing.recorder.Recorder`
masks them and writes them to a journal of their own (``<db>.journal/trace-<id>.journal``),
ingested into the ``spans`` table (``run_id`` null) when the trace ends. If another process
holds the DuckDB file then, the journal stays and the next open of the store ingests it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fm_lab.tracing.spans import (
    Span,
    SpanContext,
    activate,
    current,
    deactivate,
    link_trace,
    linked_parent,
    new_span_id,
    new_trace_id,
    span,
)

if TYPE_CHECKING:
    from fm_lab.store.base import RunStore

KEY_PREFIX = "trace-"


class StandaloneTrace:
    """The spans of one trace outside runs, on their way to ``store``. Its :attr:`context`
    is where top-level spans go; :meth:`close` stores them."""

    def __init__(self, store: RunStore) -> None:
        from fm_lab.tracing.recorder import Recorder

        trace_id, parent = linked_parent() or (new_trace_id(), None)  # a batch item's trace
        key = f"{KEY_PREFIX}{trace_id}-{new_span_id()}"
        self.store = store
        self.trace_id = trace_id
        self.recorder = Recorder(store, key, store.open_journal(key), 0, ingested_once=False)
        self.context = SpanContext(trace_id, parent, None, self.recorder.append)

    def close(self) -> bool:
        """Make the spans durable and ingest them without waiting for the file; False when
        that failed (another process holds it): they stay in the journal, which the next
        open of the store (in any process) ingests."""
        recorder, log = self.recorder, logging.getLogger("fm_lab")
        stored = False
        try:
            recorder.commit()
            stored = recorder.flush(wait=False)
            if not stored:
                log.info("%s is busy: trace %s waits in its journal until the store is opened "
                         "again", self.store.path, self.trace_id)
        except Exception:  # the call itself succeeded: never fail it for its trace
            log.warning("trace %s could not be stored in %s (it stays in its journal)",
                        self.trace_id, self.store.path, exc_info=True)
        finally:
            if recorder.journal is not None:
                recorder.journal.close(remove=stored)
        if not stored:
            self.store.recover_later()
        return stored


def begin(store: RunStore | None = None) -> StandaloneTrace | None:
    """A new trace in ``store`` (default: the default store) when nothing is traced yet;
    None inside a run or a trace, or when the store is read-only."""
    if current() is not None:
        return None
    from fm_lab.store.errors import StoreError

    try:
        if store is None:
            from fm_lab.store.default import default_store

            store = default_store()
        return None if store.read_only else StandaloneTrace(store)
    except (OSError, StoreError):  # no store to write to: the call runs untraced
        logging.getLogger("fm_lab").warning("this call is not traced: no usable store",
                                            exc_info=True)
        return None


@contextlib.contextmanager
def standalone(store: RunStore | None = None) -> Iterator[None]:
    """Spans opened in this block form a trace of their own, stored when it ends, unless
    they already belong to one (inside a run or a :func:`traced` block: nothing to do)."""
    trace = begin(store)
    if trace is None:
        yield
        return
    token = activate(trace.context)
    try:
        yield
    finally:
        deactivate(token)
        trace.close()


@contextlib.contextmanager
def traced(name: str, *, store: RunStore | None = None, **attributes: Any) -> Iterator[Span]:
    """Group everything traced in this block (agent and LLM calls, tools, your own
    :func:`~fm_lab.tracing.span` and the workflow runs it starts) into one trace under a root
    span ``name`` (kind ``trace``), stored in ``store`` (default: the default store) when the
    block ends. Inside a run or another block it is a plain span of that trace.

    >>> with traced("nightly report") as root:  # doctest: +SKIP
    ...     agent.generate("Summarise the day")
    >>> fm_lab.trace(root.trace_id)  # doctest: +SKIP
    """
    trace = begin(store)
    if trace is None:
        with span(name, kind="trace", **attributes) as inner:
            yield inner
        return
    try:
        with Span(trace.context, name, "trace", None, attributes) as root, \
                link_trace(trace.trace_id, root.span_id):
            yield root
    finally:
        trace.close()
