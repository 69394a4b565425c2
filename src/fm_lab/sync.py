"""Running a coroutine to its end from sync code, inside Jupyter's running loop too."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


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
        return asyncio.run(coro)
    context = contextvars.copy_context()  # the current span or trace goes along
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fm_lab-run") as pool:
        return pool.submit(context.run, asyncio.run, coro).result()
