"""The background thread that stores each file's queued runs once their delay is up
(:mod:`fm_lab.store.run_groups`), and, at the interpreter's exit, whatever is still queued.

One daemon thread per process serves every file. A file's storer (its store's
``store_groups``) is called with ``wait=False``: it returns False when the store is busy on
another thread (tried again shortly) and raises when the group cannot go in (logged, tried
again later, each time after a longer wait: the runs stay safe in their journals).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Storer = Callable[[bool], bool]  # store_groups(wait): False when it could not start now

_BUSY_RETRY_S = 0.01
_RETRY_MAX_S = 5.0

log = logging.getLogger("fm_lab")


@dataclass
class _Due:
    at: float
    store: Storer
    delay_s: float
    failures: int = 0


_due: dict[str, _Due] = {}  # by store path
_cond = threading.Condition()
_thread: threading.Thread | None = None
_exit_hook = False


def schedule(path: str, store: Storer, delay_s: float) -> None:
    """Call ``store`` for ``path`` ``delay_s`` from now, unless it is due already (a group's
    delay runs from its first run)."""
    global _exit_hook, _thread
    with _cond:
        if path in _due:
            return
        _due[path] = _Due(time.monotonic() + delay_s, store, delay_s)
        if not _exit_hook:  # registered after the store modules' own exit hooks: runs first
            atexit.register(store_all)
            _exit_hook = True
        if _thread is None:
            _thread = threading.Thread(target=_serve, name="fm_lab-run-groups", daemon=True)
            _thread.start()
        _cond.notify()


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
        with _cond:
            _due.setdefault(path, _Due(time.monotonic() + entry.delay_s, entry.store,
                                       entry.delay_s, entry.failures + 1))
            _cond.notify()
        raise


def store_all() -> None:
    """Store every file's queued runs now (at exit; what cannot go in stays in its journal,
    for the next process that opens the file)."""
    with _cond:
        due = list(_due.values())
        _due.clear()
    for entry in due:
        try:
            entry.store(True)
        except Exception as exc:  # the exit goes on; the journals keep the runs
            log.warning("%s", exc)


def _serve() -> None:
    while True:
        with _cond:
            ready = _take_ready()
            while not ready:
                now = time.monotonic()
                first = min((d.at for d in _due.values()), default=None)
                _cond.wait(None if first is None else max(0.0, first - now))
                ready = _take_ready()
        for path, entry in ready:
            _store(path, entry)


def _take_ready() -> list[tuple[str, _Due]]:
    now = time.monotonic()
    ready = [(path, entry) for path, entry in _due.items() if entry.at <= now]
    for path, _ in ready:
        del _due[path]
    return ready


def _store(path: str, entry: _Due) -> None:
    try:
        if entry.store(False):
            return
        retry_s, failures = _BUSY_RETRY_S, entry.failures
    except Exception as exc:
        failures = entry.failures + 1
        retry_s = min(entry.delay_s * 2 ** failures, _RETRY_MAX_S)
        if failures == 1:
            log.warning("%s (tried again in the background)", exc)
    with _cond:
        if path not in _due:
            _due[path] = _Due(time.monotonic() + retry_s, entry.store, entry.delay_s, failures)
            _cond.notify()


def _forget_after_fork() -> None:
    """A forked child has no storer thread, and its parent's groups are the parent's."""
    global _cond, _thread
    _cond = threading.Condition()
    _thread = None
    _due.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
