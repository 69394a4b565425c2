"""Timers that fire due waits: expired approval / user_input / wait_for_event timeouts and
suspended sleeps whose wake-up time has come, without anyone calling ``resume``.

A timer is a daemon thread watching one store: every ``interval_s`` (sooner when the next
wait falls due earlier) it asks the store for due waits (one DuckDB query) and resumes those
runs, one after another, on its own thread. Only one process fires a store's waits at a time
(a lock file beside the journals), and a run another process is running is skipped::

    timer = fm_lab.timers.start(store)   # or fm_lab.connect(...) first, then start()
    ...
    fm_lab.timers.stop()

In a Jupyter kernel a timer starts by itself for each file store a run uses (set
``FM_LAB_TIMERS=0`` to turn that off); elsewhere start one, or run ``fm-lab recover --watch``.
A timer watches only stores this process opened. It resumes runs with the functions this
process has: a ``code`` node whose function was registered in another notebook fails here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from fm_lab.engine.wakeups import fire_due

if TYPE_CHECKING:
    from fm_lab.engine.run import Run
    from fm_lab.store.base import RunStore

DEFAULT_INTERVAL_S = 2.0
_timers: dict[str, Timer] = {}
_lock = threading.Lock()
_log = logging.getLogger("fm_lab")


class Timer:
    """Fires one store's due waits from a daemon thread until :meth:`stop`."""

    def __init__(self, store: RunStore, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.store = store
        self.interval_s = interval_s
        self.fired: list[Run] = []  # the runs it resumed, in order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"fm_lab-timer {store.path}")

    def __repr__(self) -> str:
        return f"Timer({self.store.path!r}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> Timer:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the run being resumed, if any; wait up to ``timeout`` for that."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def tick(self) -> float:
        """Fire what is due now; returns the seconds until the next look."""
        runs, next_at = fire_due(self.store)
        self.fired.extend(runs)
        if next_at is None:
            return self.interval_s
        return max(0.0, min(self.interval_s, next_at - time.time()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.tick()
            except Exception:  # a broken store or run must not end the timer
                _log.warning("timer of %s failed", self.store.path, exc_info=True)
                delay = self.interval_s
            self._stop.wait(delay)


def start(store: RunStore | None = None, interval_s: float = DEFAULT_INTERVAL_S) -> Timer:
    """Start the timer of ``store`` (default: the store :func:`fm_lab.connect` opened),
    or return the one already running in this process."""
    if store is None:
        from fm_lab.store.default import current

        store = current()
        if store is None:
            raise ValueError("no store is open: call fm_lab.connect() or pass store=")
    with _lock:
        timer = _timers.get(_key(store))
        if timer is not None and timer.running:
            return timer
        timer = _timers[_key(store)] = Timer(store, interval_s).start()
        return timer


def stop(store: RunStore | None = None) -> None:
    """Stop the timer of ``store``, or every timer of this process."""
    with _lock:
        keys = list(_timers) if store is None else [_key(store)]
        stopping = [_timers.pop(key) for key in keys if key in _timers]
    for timer in stopping:
        timer.stop()


def running() -> list[Timer]:
    """The timers running in this process."""
    with _lock:
        return [timer for timer in _timers.values() if timer.running]


def autostart(store: RunStore) -> None:
    """Start ``store``'s timer when this process is a Jupyter kernel (a long-lived process
    that used the store); costs a dict lookup otherwise."""
    if store.memory or store.read_only or _key(store) in _timers:
        return
    if os.environ.get("FM_LAB_TIMERS") == "0" or not _in_kernel():
        return
    start(store)


def _key(store: RunStore) -> str:
    return f":memory:{id(store)}" if store.memory else store.path


def _in_kernel() -> bool:
    import sys

    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None else None
    return type(ip).__name__ == "ZMQInteractiveShell"


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _timers.clear()  # their threads did not come along


os.register_at_fork(after_in_child=_forget_after_fork)
