"""Progress bars for runs: an ``on_event`` listener drawing one bar for a run's nodes and one
per ``foreach`` node's items (``tqdm.auto``: a widget in Jupyter, text in a terminal)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

_FINISHED = frozenset({"succeeded", "failed", "skipped", "suspended", "cached"})


def _is_item(path: str) -> bool:
    return path.endswith("]") and "/" not in path


class RunProgress:
    """Counts finished nodes (and items) of one run; call it with each run event.

    >>> bar = RunProgress(total=3, description="triage", disable=True)
    >>> bar({"type": "node", "path": "a", "node_id": "a", "status": "succeeded"})
    >>> bar.done
    1
    """

    def __init__(self, total: int, description: str = "", *, disable: bool = False,
                 file: Any = None) -> None:
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._file = file
        self._disable = disable
        self._lock = threading.Lock()
        self.done = 0
        self.items: dict[str, Any] = {}
        self.items_done: dict[str, int] = {}  # items finished per foreach path
        self.bar = tqdm(total=total, desc=description or "run", unit="node", leave=True,
                        disable=disable, file=file)

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            kind = event.get("type")
            if kind == "items":
                self.items[event["path"]] = self._tqdm(
                    total=event["total"], desc=f"  {event['node_id']}", unit="item",
                    leave=False, disable=self._disable, file=self._file)
            elif kind == "node" and event.get("status") in _FINISHED:
                self._finished(event)
            elif kind == "run" and event.get("status") != "running":
                self.close(event["status"])

    def _finished(self, event: dict[str, Any]) -> None:
        path = event["path"]
        if _is_item(path):
            head = path.rsplit("[", 1)[0]
            self.items_done[head] = self.items_done.get(head, 0) + 1
            bar = self.items.get(head)
            if bar is not None:
                bar.update(1)
            return
        if path != event["node_id"]:
            return  # inside a body: the item counts once
        self.done += 1
        self.bar.update(1)
        self.bar.set_postfix_str(f"{event['node_id']}: {event['status']}", refresh=False)
        items = self.items.pop(path, None)
        if items is not None:
            items.close()

    def close(self, status: str = "") -> None:
        """Close every bar (the run ended with ``status``)."""
        for bar in self.items.values():
            bar.close()
        self.items.clear()
        if status:
            self.bar.set_postfix_str(status, refresh=False)
        self.bar.close()


def in_notebook() -> bool:
    """Whether code runs in a Jupyter kernel (where progress shows by default)."""
    shell = sys.modules.get("IPython")
    if shell is None or os.environ.get("FM_LAB_PROGRESS") == "0":
        return False
    ip = shell.get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def listener(total: int, description: str, progress: bool | None,
             on_event: Callable[[dict[str, Any]], None] | None
             ) -> Callable[[dict[str, Any]], None] | None:
    """The ``on_event`` a run gets: the caller's, a progress bar's, both or none.
    ``progress=None`` shows a bar in notebooks only."""
    show = in_notebook() if progress is None else progress
    if not show:
        return on_event
    bar = RunProgress(total, description)
    if on_event is None:
        return bar

    def both(event: dict[str, Any]) -> None:
        bar(event)
        on_event(event)

    return both
