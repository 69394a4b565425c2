"""Running a coroutine to its end from sync code, inside Jupyter's running loop too.

On the main thread outside a running loop (a script, the CLI, a batch worker) one event loop
is kept for every call instead of a new one per call: ``asyncio.run`` makes a loop, a
self-pipe and a SIGINT handler and tears them down again, about 0.35 ms of a short run on a
2-core machine. Each call still behaves as ``asyncio.run``: it runs in a copy of the caller's
context, Ctrl-C cancels it, and what it leaves behind (tasks, async generators) is cancelled
and closed before it returns. Other threads, and a call that was interrupted, use a fresh loop.

Where a loop runs already (a notebook cell), a call runs on a daemon thread that keeps its own
loop the same way, and a kernel interrupt (the stop button) cancels the run as Ctrl-C cancels
``asyncio.run``: the cell gets ``KeyboardInterrupt`` once the run has wound down (its finished
nodes kept, the run left to resume), where before it waited for the run to finish.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import os
import queue
import signal
import threading
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


def _run_once(runner: asyncio.Runner, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on ``runner``'s loop as ``asyncio.run`` would, keeping the loop for the
    next call: in a copy of the caller's context, Ctrl-C cancelling it (:class:`_CtrlC`);
    afterwards the tasks it left are cancelled, its async generators closed; meanwhile the
    loop is this thread's current loop (for code that asks the policy), afterwards no
    longer."""
    loop = runner.get_loop()
    try:
        asyncio.set_event_loop(loop)
        task = loop.create_task(coro, context=contextvars.copy_context())
        with _CtrlC.cancelling(task) as ctrl_c:
            try:
                return loop.run_until_complete(task)
            except asyncio.CancelledError:
                if ctrl_c.count and task.uncancel() == 0:  # cancelled by Ctrl-C alone
                    raise KeyboardInterrupt from None
                raise
    finally:
        _tidy(loop)
        asyncio.set_event_loop(None)


class _CtrlC:
    """The SIGINT handler while a call runs on the kept loop, as ``asyncio.Runner.run``
    installs one: the first Ctrl-C cancels the call's task, a second raises
    KeyboardInterrupt at once. Runner's handler is a ``functools.partial`` holding the task;
    the ``signal`` module reads a handler back as an enum first, formatting the refusal with
    the handler's repr, and a task's repr walks its coroutine: about 0.05 ms a call, where
    this one's repr is a constant."""

    __slots__ = ("count", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.count = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1 and not self.task.done():
            self.task.cancel()
            self.task.get_loop().call_soon_threadsafe(_nothing)  # wake the loop
            return
        raise KeyboardInterrupt

    def __repr__(self) -> str:
        return "<fm_lab: Ctrl-C cancels the run>"

    @classmethod
    @contextlib.contextmanager
    def cancelling(cls, task: asyncio.Task[Any]) -> Iterator[_CtrlC]:
        """Ctrl-C cancels ``task`` in the block, when Python's own handler is installed
        (a handler someone else set is kept, as ``asyncio.Runner`` keeps it)."""
        handler = cls(task)
        installed = signal.getsignal(signal.SIGINT) is signal.default_int_handler
        if installed:
            try:
                signal.signal(signal.SIGINT, handler)
            except ValueError:  # not the main thread of the main interpreter
                installed = False
        try:
            yield handler
        finally:
            if installed and signal.getsignal(signal.SIGINT) is handler:
                signal.signal(signal.SIGINT, signal.default_int_handler)


def _nothing() -> None:
    """A callback that only wakes a loop."""


def _tidy(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks a call left on ``loop`` and close its async generators, as the end
    of ``asyncio.run`` does."""
    left = asyncio.all_tasks(loop)
    for task in left:
        task.cancel()
    if left:
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
    _close_async_generators(loop)


def _close_async_generators(loop: asyncio.AbstractEventLoop) -> None:
    """Close the async generators still open on ``loop``, as ``loop.shutdown_asyncgens()``
    does, without marking the loop shut down (it then warns of every later generator)."""
    open_ones = getattr(loop, "_asyncgens", None)  # CPython's loops track them here
    if not open_ones:
        return
    closing = list(open_ones)
    open_ones.clear()
    loop.run_until_complete(asyncio.gather(*(loop.create_task(gen.aclose())
                                             for gen in closing), return_exceptions=True))


_kept: asyncio.Runner | None = None


def _close_kept() -> None:
    global _kept
    runner, _kept = _kept, None
    if runner is not None:
        runner.close()


# a forked child's loops inherited from its parent: never closed nor collected there (closing
# one would unregister the parent's self-pipe from the epoll instance both processes share,
# and the parent's loop would no longer wake for work done on other threads)
_inherited: list[object] = []


def _forget_after_fork() -> None:
    global _kept, _loop_thread
    _inherited.extend([_kept, _loop_thread])  # the loop thread holds its current loop
    _kept = None  # the parent's loop: its selector and self-pipe are not this process's
    _loop_thread = _LoopThread()  # nor its loop thread (nor its lock's state)


atexit.register(_close_kept)
os.register_at_fork(after_in_child=_forget_after_fork)


def _run_here(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, on the kept loop when this is the main thread."""
    global _kept
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(coro)
    runner = _kept if _kept is not None else asyncio.Runner()
    _kept = None  # taken while it runs
    try:
        result = _run_once(runner, coro)
    except (KeyboardInterrupt, SystemExit):
        runner.close()  # interrupted mid-turn: the next call starts on a fresh loop
        raise
    except BaseException:
        _keep(runner)
        raise
    _keep(runner)
    return result


def _keep(runner: asyncio.Runner) -> None:
    """Keep ``runner`` for the next call, unless its loop still holds callbacks the call
    scheduled (``asyncio.run`` would drop them with the loop: so is this one, then)."""
    global _kept
    if _kept is None and not _callbacks_left(runner.get_loop()):
        _kept = runner
    else:
        runner.close()


def _callbacks_left(loop: asyncio.AbstractEventLoop) -> bool:
    """True when ``loop`` has callbacks waiting (timers not cancelled, ready handles), or does
    not show them (not CPython's loop)."""
    ready, timers = getattr(loop, "_ready", None), getattr(loop, "_scheduled", None)
    if ready is None or timers is None:
        return True
    return bool(ready) or any(not timer.cancelled() for timer in timers)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, or, when a loop is already running in this thread (a notebook),
    the same on a worker thread (in a copy of this context), waiting for it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:  # outside the except block, so node tracebacks stay their own
        return _run_here(coro)
    context = contextvars.copy_context()  # the current span or trace goes along
    return _loop_thread.run(coro, context)


class _Call:
    """A coroutine handed to the loop thread, and what became of it."""

    def __init__(self, coro: Coroutine[Any, Any, Any], context: contextvars.Context) -> None:
        self.coro = coro
        self.context = context
        self.result: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.started = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None

    def wait(self) -> Any:
        """The coroutine's result; Ctrl-C (a kernel interrupt) cancels it, as it does a
        script's ``asyncio.run``, and is raised once it has wound down."""
        try:
            return self._outcome()
        except KeyboardInterrupt:
            if not self.result.cancel():  # it started: cancel its task, wait for its end
                self.started.wait()
                assert self.loop is not None and self.task is not None
                self.loop.call_soon_threadsafe(self.task.cancel)
                with contextlib.suppress(BaseException):  # its CancelledError, or its end
                    self._outcome()
            raise

    def _outcome(self) -> Any:
        """The result, waited for in turns of 0.1 s: a SIGINT the kernel delivers to another
        thread of the process sets Python's flag without waking this one, whose Ctrl-C then
        waited for the whole run (seen in a loaded test process); each turn checks it."""
        while True:
            try:
                return self.result.result(timeout=0.1)
            except TimeoutError:
                continue


class _LoopThread:
    """A daemon thread keeping an event loop for the calls made where a loop runs already (a
    notebook cell): a thread and a loop made for each call took ~0.3 ms. One call at a time;
    a call that finds it busy (another thread's, or one made inside a call) gets a thread and
    a loop of its own."""

    def __init__(self) -> None:
        self._busy = threading.Lock()
        self.calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._started = False
        self.loop: asyncio.AbstractEventLoop | None = None  # the thread's, while it serves

    def run(self, coro: Coroutine[Any, Any, T], context: contextvars.Context) -> T:
        """Run ``coro`` in ``context`` on the thread, waiting for it."""
        call = _Call(coro, context)
        if not self._busy.acquire(blocking=False):
            threading.Thread(target=_serve_one, args=(call,), name="fm_lab-run",
                             daemon=True).start()
            return call.wait()  # type: ignore[no-any-return]
        try:
            if not self._started:
                threading.Thread(target=_serve, args=(self,), name="fm_lab-run",
                                 daemon=True).start()
                self._started = True
            self.calls.put(call)
            return call.wait()  # type: ignore[no-any-return]
        finally:
            self._busy.release()


def _serve(owner: _LoopThread) -> None:
    """The loop thread: run each call on a kept loop (a fresh one after a call that left
    callbacks scheduled)."""
    loop = owner.loop = asyncio.new_event_loop()
    while True:
        call = owner.calls.get()
        _serve_call(loop, call)
        if _callbacks_left(loop):
            loop.close()
            loop = owner.loop = asyncio.new_event_loop()


def _serve_one(call: _Call) -> None:
    """A call's own thread and loop, closed after it."""
    loop = asyncio.new_event_loop()
    try:
        _serve_call(loop, call)
    finally:
        loop.close()


def _serve_call(loop: asyncio.AbstractEventLoop, call: _Call) -> None:
    if not call.result.set_running_or_notify_cancel():
        call.coro.close()  # cancelled before it started
        return
    task = loop.create_task(call.coro, context=call.context)
    call.loop, call.task = loop, task
    call.started.set()
    failure: BaseException | None = None
    try:
        outcome = loop.run_until_complete(task)
    except BaseException as exc:
        failure = exc
    try:
        _tidy(loop)  # before the caller resumes, as asyncio.run
    finally:
        if failure is not None:
            call.result.set_exception(failure)
        else:
            call.result.set_result(outcome)


_loop_thread = _LoopThread()
