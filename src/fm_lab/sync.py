"""Running a coroutine to its end from sync code, inside Jupyter's running loop too.

On the main thread outside a running loop (a script, the CLI, a batch worker) one event loop
is kept for every call instead of a new one per call: ``asyncio.run`` makes a loop, a
self-pipe and a SIGINT handler and tears them down again, about 0.35 ms of a short run on a
2-core machine. Each call still behaves as ``asyncio.run``: it runs in a copy of the caller's
context, Ctrl-C cancels it, and what it leaves behind (tasks, async generators) is cancelled
and closed before it returns. Other threads, and a call that was interrupted, use a fresh loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _run_once(runner: asyncio.Runner, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on ``runner`` as ``asyncio.run`` would, keeping the loop for the next
    call: in a copy of the caller's context; afterwards the tasks it left are cancelled, its
    async generators closed, and the loop is no longer this thread's current loop."""
    try:
        return runner.run(coro, context=contextvars.copy_context())
    finally:
        loop = runner.get_loop()
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        _close_async_generators(loop)
        asyncio.set_event_loop(None)


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


def _forget_after_fork() -> None:
    global _kept
    _kept = None  # the parent's loop: its selector and self-pipe are not this process's


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
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fm_lab-run") as pool:
        return pool.submit(context.run, asyncio.run, coro).result()
