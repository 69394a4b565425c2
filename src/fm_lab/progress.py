"""Progress of runs: an ``on_event`` listener counting a run's nodes (per status) and each
``foreach`` node's items. In a notebook the count is drawn as HTML updated in place
(:mod:`fm_lab.progress_display`), so the saved notebook keeps the final state; in a terminal
as tqdm text bars."""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

_FINISHED = frozenset({"succeeded", "failed", "skipped", "suspended", "cached"})


def _is_item(path: str) -> bool:
    return path.endswith("]") and "/" not in path


class ProgressCounts:
    """What a run's events said so far: finished nodes by status, items per foreach node,
    the nodes running now and, once it ended, the run's status.

    >>> counts = ProgressCounts(total=2, description="triage")
    >>> counts.apply({"type": "node", "path": "a", "node_id": "a", "status": "succeeded"})
    'node'
    >>> counts.done, dict(counts.by_status)
    (1, {'succeeded': 1})
    """

    def __init__(self, total: int, description: str = "") -> None:
        self.total = total
        self.description = description or "run"
        self.done = 0
        self.by_status: Counter[str] = Counter()
        self.running: set[str] = set()
        self.items_total: dict[str, int] = {}  # foreach path -> items announced
        self.items_done: dict[str, int] = {}  # foreach path -> items finished
        self.last = ""  # "node: status" of the last node that finished
        self.status = ""  # the run's final status, once it ended

    def apply(self, event: dict[str, Any]) -> str | None:
        """Count ``event``; returns what changed (``items``, ``item``, ``running``, ``node``,
        ``end``) or None when nothing did."""
        kind = event.get("type")
        if kind == "items":
            self.items_total[event["path"]] = event["total"]
            return "items"
        if kind == "run":
            if event.get("status") in (None, "running"):
                return None
            self.status = str(event["status"])
            self.running.clear()
            return "end"
        if kind != "node":
            return None
        path, status = event["path"], event.get("status")
        if status == "running":
            if path != event["node_id"]:
                return None
            self.running.add(path)
            return "running"
        if status not in _FINISHED:
            return None
        if _is_item(path):
            head = path.rsplit("[", 1)[0]
            self.items_done[head] = self.items_done.get(head, 0) + 1
            return "item"
        if path != event["node_id"]:
            return None  # inside a body: the item counts once
        self.done += 1
        self.by_status[str(status)] += 1
        self.running.discard(path)
        self.last = f"{event['node_id']}: {status}"
        return "node"

    def open_items(self) -> dict[str, tuple[int, int]]:
        """Items done and announced, per foreach node still running."""
        return {path: (self.items_done.get(path, 0), total)
                for path, total in self.items_total.items() if path in self.running}


class RunProgress:
    """A run's progress as tqdm text bars (terminals): one for the nodes, one per running
    ``foreach`` node's items; call it with each run event.

    >>> bar = RunProgress(total=3, description="triage", disable=True)
    >>> bar({"type": "node", "path": "a", "node_id": "a", "status": "succeeded"})
    >>> bar.done
    1
    """

    def __init__(self, total: int, description: str = "", *, disable: bool = False,
                 file: Any = None) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._file = file
        self._disable = disable
        self._lock = threading.Lock()
        self.counts = ProgressCounts(total, description)
        self.items: dict[str, Any] = {}
        self.bar = tqdm(total=total, desc=self.counts.description, unit="node", leave=True,
                        disable=disable, file=file)

    @property
    def done(self) -> int:
        """Nodes finished."""
        return self.counts.done

    @property
    def items_done(self) -> dict[str, int]:
        """Items finished per foreach path."""
        return self.counts.items_done

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            change = self.counts.apply(event)
            if change == "items":
                self.items[event["path"]] = self._tqdm(
                    total=event["total"], desc=f"  {event['node_id']}", unit="item",
                    leave=False, disable=self._disable, file=self._file)
            elif change == "item":
                bar = self.items.get(event["path"].rsplit("[", 1)[0])
                if bar is not None:
                    bar.update(1)
            elif change == "node":
                self.bar.update(1)
                self.bar.set_postfix_str(self.counts.last, refresh=False)
                items = self.items.pop(event["path"], None)
                if items is not None:
                    items.close()
            elif change == "end":
                self.close(self.counts.status)

    def close(self, status: str = "") -> None:
        """Close every bar (the run ended with ``status``)."""
        for bar in self.items.values():
            bar.close()
        self.items.clear()
        if status:
            self.bar.set_postfix_str(status, refresh=False)
        self.bar.close()


def kernel_display() -> bool:
    """Whether output goes to a Jupyter front-end: an IPython kernel with a display publisher
    (detected as ``tqdm.auto`` does: the kernel app in the shell's config)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    ip = ipython.get_ipython()
    if ip is None or getattr(ip, "display_pub", None) is None:
        return False
    return "IPKernelApp" in ip.config or type(ip).__name__ == "ZMQInteractiveShell"


def in_notebook() -> bool:
    """Whether code runs in a Jupyter kernel (where progress shows by default)."""
    return os.environ.get("FM_LAB_PROGRESS") != "0" and kernel_display()


def listener(total: int, description: str, progress: bool | None,
             on_event: Callable[[dict[str, Any]], None] | None
             ) -> Callable[[dict[str, Any]], None] | None:
    """The ``on_event`` a run gets: the caller's, a progress display's, both or none.
    ``progress=None`` shows progress in notebooks only: HTML there, tqdm text elsewhere."""
    show = in_notebook() if progress is None else progress
    if not show:
        return on_event
    bar: Callable[[dict[str, Any]], None]
    if kernel_display():
        from fm_lab.progress_display import HtmlProgress

        bar = HtmlProgress(total, description)
    else:
        bar = RunProgress(total, description)
    if on_event is None:
        return bar

    def both(event: dict[str, Any]) -> None:
        bar(event)
        on_event(event)

    return both
