"""Run event streams: ``for event in fm_lab.stream(wf, inputs)`` (or ``async for``) yields the
run's typed events (:mod:`fm_lab.engine.events`) as they happen, with no callback.

The run executes on a thread of its own with its own event loop (as ``fm_lab.run`` does
inside Jupyter), so it never waits for the consumer: a slow consumer, one that stops
iterating, or one that never starts, does not hold the run up or break it. Events wait in a
bounded buffer (``max_buffered``); when it is full, new events are left out and counted, and
the consumer gets one :class:`~fm_lab.engine.events.EventsDropped` with the count before the
next event that fits (numbered as the last event left out; ``seq`` shows the gap).
:class:`~fm_lab.engine.events.RunFinished` is never dropped and is always the last event.
A consumer that leaves the loop stops the buffering (the run goes on; :meth:`RunStream.result`
still returns it)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.engine.events import EventsDropped, EventTranslator, RunEvent, RunFinished

if TYPE_CHECKING:
    from fm_lab.engine.run import Run
    from fm_lab.spec.models import Workflow

DEFAULT_MAX_BUFFERED = 10_000

Listener = Callable[[dict[str, Any]], None]


class RunStream:
    """The events of one run (a new one, or a resumed one), iterable once, synchronously
    (``for``, also inside Jupyter's running loop) or asynchronously (``async for``).
    ``run_id`` is known at once; :meth:`result` waits for the :class:`~fm_lab.Run`.

    Built by :func:`stream` and :func:`stream_resume`; the run starts when the stream is
    made, whether or not anyone iterates."""

    def __init__(self, run_id: str, start: Callable[[Listener], Coroutine[Any, Any, Run]],
                 *, on_event: Listener | None = None,
                 max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be at least 1, not {max_buffered}")
        self.run_id = run_id
        self.max_buffered = max_buffered
        self.dropped = 0
        """Events left out so far because the buffer was full."""
        self._unreported = 0  # dropped, not yet told to the consumer
        self._translator = EventTranslator()
        self._buffer: deque[RunEvent] = deque()
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._closed = False  # the run ended: nothing more comes
        self._finished = False  # RunFinished was heard
        self._abandoned = False  # the consumer left: buffer nothing more
        self._iterated = False
        self._on_event = on_event
        self._future: concurrent.futures.Future[Run] = concurrent.futures.Future()
        context = contextvars.copy_context()  # the current span or trace goes along
        self._thread = threading.Thread(
            target=context.run, args=(self._work, start), name=f"fm_lab-stream-{run_id}")
        self._thread.start()

    # ---- the producer (the run's thread) -----------------------------------------------
    def _work(self, start: Callable[[Listener], Coroutine[Any, Any, Run]]) -> None:
        try:
            run = asyncio.run(start(self._hear))
            if not self._finished:  # nothing ran (a resume of a run that had ended)
                self._hear({"type": "run", "run_id": self.run_id, "status": run.status,
                            "outputs": run.outputs, "error": run.error})
            self._future.set_result(run)
        except BaseException as exc:
            self._future.set_exception(exc)
        finally:
            with self._cond:
                self._closed = True
            self._notify()

    def _hear(self, raw: dict[str, Any]) -> None:
        """The run's ``on_event``: translate, buffer (or count as dropped), wake consumers."""
        if self._on_event is not None:
            self._on_event(raw)
        with self._cond:
            event = self._translator.translate(raw)
            if isinstance(event, RunFinished):
                self._finished = True
            if self._abandoned:
                return
            if event is None:
                return
            last = isinstance(event, RunFinished)
            room = len(self._buffer) < self.max_buffered
            if not room and not last:
                self.dropped += 1
                self._unreported += 1
                return
            if self._unreported:
                self._buffer.append(EventsDropped(self.run_id, event.seq - 1, event.at,
                                                  count=self._unreported))
                self._unreported = 0
            self._buffer.append(event)
        self._notify()

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, ready in waiters:
            with contextlib.suppress(RuntimeError):  # that consumer's loop closed
                loop.call_soon_threadsafe(ready.set)

    # ---- the consumer ------------------------------------------------------------------
    def _claim(self) -> None:
        if self._iterated:
            raise RuntimeError(f"the events of run {self.run_id} are iterated once; "
                               "fm_lab.traces() and run.nodes_df() show what happened")
        self._iterated = True

    def _take(self) -> tuple[RunEvent | None, bool]:
        """The next buffered event, and whether the stream has ended (called under lock)."""
        if self._buffer:
            return self._buffer.popleft(), False
        return None, self._closed

    def _leave(self) -> None:
        with self._cond:
            self._abandoned = True
            self._buffer.clear()

    def events(self) -> RunStream:
        """The stream itself: ``for e in s.events()`` / ``async for e in s.events()``."""
        return self

    def __iter__(self) -> Iterator[RunEvent]:
        self._claim()
        try:
            while True:
                with self._cond:
                    event, ended = self._take()
                    while event is None and not ended:
                        self._cond.wait()
                        event, ended = self._take()
                if event is None:
                    break
                yield event
        finally:
            self._leave()
        self._raise_failure()

    def __aiter__(self) -> AsyncIterator[RunEvent]:
        return self._aiterate()

    async def _aiterate(self) -> AsyncIterator[RunEvent]:
        self._claim()
        ready = asyncio.Event()
        waiter = (asyncio.get_running_loop(), ready)
        with self._cond:
            self._waiters.append(waiter)
        try:
            while True:
                with self._cond:
                    event, ended = self._take()
                    if event is None and not ended:
                        ready.clear()
                if event is not None:
                    yield event
                    continue
                if ended:
                    break
                await ready.wait()
        finally:
            with self._cond:
                self._waiters.remove(waiter)
            self._leave()
        self._raise_failure()

    def _raise_failure(self) -> None:
        """A run that could not start (an invalid workflow or inputs) raises its error."""
        if self._future.done() and self._future.exception() is not None:
            self._future.result()

    # ---- the run -----------------------------------------------------------------------
    def result(self, timeout: float | None = None) -> Run:
        """Wait for the run to finish or suspend (up to ``timeout`` seconds); return it."""
        return self._future.result(timeout)

    async def aresult(self) -> Run:
        """Async :meth:`result`."""
        return await asyncio.wrap_future(self._future)

    @property
    def done(self) -> bool:
        """Whether the run has finished or suspended."""
        return self._future.done()

    def cancel(self) -> None:
        """Cancel the run (:func:`fm_lab.cancel`); its events end with ``cancelled``."""
        from fm_lab.engine.api import cancel

        cancel(self.run_id)

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"<RunStream {self.run_id} {state}>"


def stream(workflow: Workflow | str | Path | dict[str, Any],
           inputs: dict[str, Any] | None = None, *, run_id: str | None = None,
           on_event: Listener | None = None, progress: bool | None = False,
           max_buffered: int = DEFAULT_MAX_BUFFERED, **kwargs: Any) -> RunStream:
    """Start a run and stream its events::

        for event in fm_lab.stream(wf, inputs):          # or: async for event in ...
            print(event.kind, getattr(event, "path", ""))

    Takes :func:`fm_lab.arun`'s arguments (``store``, ``cache``, ``policy``, ...; no
    progress bar unless ``progress=True``). Kinds: ``run_started``, ``node_started``,
    ``node_finished``, ``node_failed``, ``node_suspended``, ``item_progress``, ``log``,
    ``events_dropped`` and, last, ``run_finished``. An invalid workflow or inputs raise
    from the iteration (and from :meth:`RunStream.result`)."""
    from fm_lab.engine.api import arun, new_run_id
    from fm_lab.store.ids import validate_run_id

    chosen = validate_run_id(run_id) if run_id is not None else new_run_id()

    def start(listen: Listener) -> Coroutine[Any, Any, Run]:
        return arun(workflow, inputs, run_id=chosen, on_event=listen, progress=progress,
                    **kwargs)

    return RunStream(chosen, start, on_event=on_event, max_buffered=max_buffered)


def stream_resume(run_id: str, data: Any = None, *, on_event: Listener | None = None,
                  progress: bool | None = False, max_buffered: int = DEFAULT_MAX_BUFFERED,
                  **kwargs: Any) -> RunStream:
    """Resume a run (:func:`fm_lab.resume`'s arguments: ``label``, ``node``, ``path_id``,
    ...) and stream the rest of it: nodes finished before are not events again."""
    from fm_lab.engine.api import aresume
    from fm_lab.store.ids import validate_run_id

    validate_run_id(run_id)

    def start(listen: Listener) -> Coroutine[Any, Any, Run]:
        return aresume(run_id, data, on_event=listen, progress=progress, **kwargs)

    return RunStream(run_id, start, on_event=on_event, max_buffered=max_buffered)
