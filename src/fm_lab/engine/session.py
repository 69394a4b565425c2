"""What every runner of one run shares: the recorder (journal + ingestion), committed results,
journaled steps, resume data and the cancel signal. Nested runners (foreach bodies, parallel
branches) write into the same journal under their path prefix."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from fm_lab.security.policy import Policy, current_policy
from fm_lab.tracing.recorder import Recorder
from fm_lab.tracing.spans import SpanContext, new_trace_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from fm_lab.engine.cache import NodeCache
    from fm_lab.nodes.registry import NodeRegistry
    from fm_lab.store.base import RunStore
    from fm_lab.store.journal import RunJournal
    from fm_lab.store.records import StoredNode

_PATH_SEPARATORS = ("/", "[", ".", "#")


class RunSession:
    """Shared by the root runner of a run and every nested runner inside it."""

    def __init__(
        self,
        *,
        store: RunStore,
        run_id: str,
        journal: RunJournal | None,
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
        answered_by: dict[str, str] | None = None,
        expired: Iterable[str] = (),
        policy: Policy | None = None,
    ) -> None:
        """``journal_seq``: the last record already stored (a resumed run goes on from it).
        ``answered_by``: who gave the new answers in ``resume`` (by path), ``expired``: the
        paths among them whose wait timed out (both go into the resume records).
        ``policy``: the execution policy the run is under (default: the one in force)."""
        self.store = store
        self.policy = policy or current_policy()
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
        self.answered_by = dict(answered_by or {})
        self.expired = frozenset(expired)
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
