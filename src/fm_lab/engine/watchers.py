"""Who watches runs of a workflow: canvases showing it hear of every top-level run of it in
this process, wherever the run was started (``fm_lab.run``, ``%flow run``, a sweep)."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fm_lab.engine.run import Run
    from fm_lab.store.base import RunStore

_log = logging.getLogger("fm_lab")


class RunWatcher(Protocol):
    """Hears of runs of the workflows it watches (events may come from a worker thread)."""

    def run_event(self, event: dict[str, Any], store: RunStore) -> None:
        """A run or node event (the ``on_event`` shape, with ``run_id``)."""

    def run_finished(self, run: Run) -> None:
        """The run stopped: finished, failed, suspended or cancelled."""


_lock = threading.Lock()
_watchers: dict[str, weakref.WeakSet[Any]] = {}


def watch(workflow_id: str, watcher: RunWatcher) -> None:
    """Let ``watcher`` hear of the runs of workflow ``workflow_id`` (held weakly)."""
    with _lock:
        _watchers.setdefault(workflow_id, weakref.WeakSet()).add(watcher)


def unwatch(workflow_id: str, watcher: RunWatcher) -> None:
    """Stop ``watcher`` hearing of runs of ``workflow_id``."""
    with _lock:
        found = _watchers.get(workflow_id)
        if found is not None:
            found.discard(watcher)
            if not found:
                del _watchers[workflow_id]


def watching(workflow_id: str) -> list[RunWatcher]:
    """The watchers of ``workflow_id`` now (empty, and cheap, when there are none)."""
    if workflow_id not in _watchers:
        return []
    with _lock:
        return list(_watchers.get(workflow_id, ()))


def with_watchers(on_event: Callable[[dict[str, Any]], None] | None,
                  watchers: list[RunWatcher], store: RunStore
                  ) -> Callable[[dict[str, Any]], None] | None:
    """``on_event`` that also tells ``watchers`` (``on_event`` itself when there are none)."""
    if not watchers:
        return on_event

    def tell(event: dict[str, Any]) -> None:
        if on_event is not None:
            on_event(event)
        for watcher in watchers:
            try:
                watcher.run_event(dict(event), store)
            except Exception:  # a watcher never breaks a run
                _log.warning("run watcher failed", exc_info=True)

    return tell


def finished(watchers: list[RunWatcher], run: Run) -> None:
    """Tell ``watchers`` that ``run`` stopped."""
    for watcher in watchers:
        try:
            watcher.run_finished(run)
        except Exception:
            _log.warning("run watcher failed", exc_info=True)
