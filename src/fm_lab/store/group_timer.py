"""The background thread that stores each file's queued runs once their delay is up
(:mod:`fm_lab.store.run_groups`), and, at the interpreter's exit, whatever is still queued.

One daemon thread per process serves every file. A file's storer (its store's
``store_groups``) is called with ``wait=False``: it returns False when the store is busy (another
thread uses it, or this process has the file open read-only: tried again after a growing wait)
and raises when the group cannot go in (logged once, tried again later, each time after a
longer wait: the runs stay safe in their journals).

The thread waits for no file: a store file another process holds makes the store busy (tried
again later). The exit stores what is queued before any ``atexit`` hook runs (``threading``'s
own exit hooks, which also run before DuckDB's: those interrupt its queries), after waiting
for a store under way on the thread; a run ending after that is stored at its end. A fork
waits for such a store too, so that a child does not inherit the file DuckDB has attached for
it, or a lock held by a thread it does not have. Every such wait is bounded.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# store_groups(wait): wait for the store's lock (True: as long as it takes, False: not at
# all, a number: that many seconds); False when it could not store now
Storer = Callable[[bool | float], bool]

_BUSY_RETRY_S = 0.01  # first wait after a busy store, doubling up to _BUSY_RETRY_MAX_S
_BUSY_RETRY_MAX_S = 1.0
_RETRY_MAX_S = 5.0  # longest wait after a failed store
EXIT_WAIT_S = 30.0  # the exit waits at most this long for a store under way on the thread
EXIT_LOCK_WAIT_S = 2.0  # and this long for each store another thread is using (a hold)
FORK_WAIT_S = 5.0  # a fork waits at most this long for a store under way

log = logging.getLogger("fm_lab")


@dataclass
class _Due:
    at: float
    store: Storer
    delay_s: float
    failures: int = 0
    busy: int = 0


_due: dict[str, _Due] = {}  # by store path
_cond = threading.Condition()
_thread: threading.Thread | None = None
_in_flight = False  # the thread is storing a group
_closing = False  # the exit has begun: the thread starts no new store
_exit_hook = False


def schedule(path: str, store: Storer, delay_s: float) -> None:
    """Call ``store`` for ``path`` ``delay_s`` from now, unless it is due already (a group's
    delay runs from its first run)."""
    global _exit_hook, _thread
    with _cond:
        if path in _due or _closing:
            return
        _due[path] = _Due(time.monotonic() + delay_s, store, delay_s)
        if not _exit_hook:
            _register_exit()
            _exit_hook = True
        if _thread is None:
            _thread = threading.Thread(target=_serve, name="fm_lab-run-groups", daemon=True)
            _thread.start()
        _cond.notify_all()


def _register_exit() -> None:
    register = getattr(threading, "_register_atexit", None)  # before atexit's hooks
    if register is not None:
        try:
            register(store_all)
            return
        except RuntimeError:  # the interpreter is shutting down already
            pass
    atexit.register(store_all)


def closing() -> bool:
    """Whether the exit has stored the queues: a run ending after that is stored at once."""
    return _closing


def store_now(path: str) -> None:
    """Call ``path``'s storer now, on this thread, if one is due (a reader that cannot store
    the group itself: a read-only store)."""
    with _cond:
        entry = _due.pop(path, None)
    if entry is None:
        return
    try:
        entry.store(True)
    except BaseException:  # the runs stay queued: tried again in the background
        _again(path, entry, entry.delay_s, entry.failures + 1, 0)
        raise


def store_all() -> None:
    """Store every file's queued runs now, after the store under way on the thread if any
    (at exit; what cannot go in stays in its journal, for the next process that opens the
    file)."""
    global _closing
    with _cond:
        _closing = True
        _cond.wait_for(lambda: not _in_flight, EXIT_WAIT_S)
        due = list(_due.values())
        _due.clear()
    for entry in due:
        try:  # a store another thread holds (a daemon thread's hold) is left to its journals
            entry.store(EXIT_LOCK_WAIT_S)
        except BaseException as exc:  # the exit goes on; the journals keep the runs
            log.warning("%s", exc)


def _serve() -> None:
    global _in_flight
    while True:
        with _cond:
            ready = _take_ready()
            while not ready:
                first = min((d.at for d in _due.values()), default=None)
                _cond.wait(None if first is None or _closing
                           else max(0.0, first - time.monotonic()))
                ready = _take_ready()
            _in_flight = True
        try:
            for path, entry in ready:
                _store(path, entry)
        finally:
            with _cond:
                _in_flight = False
                _cond.notify_all()


def _take_ready() -> list[tuple[str, _Due]]:
    if _closing:
        return []
    now = time.monotonic()
    ready = [(path, entry) for path, entry in _due.items() if entry.at <= now]
    for path, _ in ready:
        del _due[path]
    return ready


def _store(path: str, entry: _Due) -> None:
    try:
        if entry.store(False):
            return
        busy = entry.busy + 1
        _again(path, entry, min(_BUSY_RETRY_S * 2 ** (busy - 1), _BUSY_RETRY_MAX_S),
               entry.failures, busy)
    except Exception as exc:
        failures = entry.failures + 1
        if failures == 1:
            log.warning("%s (tried again in the background)", exc)
        _again(path, entry, min(entry.delay_s * 2 ** failures, _RETRY_MAX_S), failures, 0)


def _again(path: str, entry: _Due, after_s: float, failures: int, busy: int) -> None:
    with _cond:
        if path not in _due:
            _due[path] = _Due(time.monotonic() + after_s, entry.store, entry.delay_s,
                              failures, busy)
            _cond.notify_all()


def _before_fork() -> None:
    """Hold the schedule through the fork, once no store is under way (a few ms: the
    thread waits for no file; at most :data:`FORK_WAIT_S`), unless this is the thread."""
    _cond.acquire()
    if threading.current_thread() is not _thread:
        _cond.wait_for(lambda: not _in_flight, FORK_WAIT_S)


def _after_fork_in_parent() -> None:
    _cond.release()


def _forget_after_fork() -> None:
    """A forked child has no storer thread, and its parent's groups are the parent's."""
    global _cond, _thread, _in_flight, _closing
    _cond = threading.Condition()
    _thread = None
    _in_flight = _closing = False
    _due.clear()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_forget_after_fork)
