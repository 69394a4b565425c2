"""A run's progress in a notebook as plain HTML (with a ``text/plain`` form), drawn with
``display(..., display_id=True)`` and updated in place. Unlike tqdm's ipywidget, whose state
a saved notebook does not keep (it reopens at ``0%| 0/4``), the last update is the output
that is saved. Updates are throttled; the end of the run is always drawn."""

from __future__ import annotations

import contextvars
import html
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from fm_lab.palette import status_colour
from fm_lab.progress import ProgressCounts

_ORDER = ("succeeded", "cached", "skipped", "suspended", "failed", "cancelled")


class Handle(Protocol):
    """What ``IPython.display.display(..., display_id=True)`` returns."""

    def update(self, obj: Any, **kwargs: Any) -> None: ...


class Timer(Protocol):
    """What :class:`threading.Timer` offers (tests pass one they fire by hand)."""

    daemon: bool

    def start(self) -> None: ...

    def cancel(self) -> None: ...


def _ipython_display(bundle: dict[str, str]) -> Handle | None:
    from IPython.display import display

    handle: Handle | None = display(bundle, raw=True, display_id=True)
    return handle


class HtmlProgress:
    """Counts a run's events (:class:`~fm_lab.progress.ProgressCounts`) and redraws the
    display at most every ``interval_s``; a change held back is drawn by a timer after the
    interval, and the run's end at once. Call it with each run event."""

    def __init__(self, total: int, description: str = "", *, interval_s: float = 0.2,
                 display: Callable[[dict[str, str]], Handle | None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 timer: Callable[[float, Callable[[], None]], Timer] = threading.Timer) -> None:
        self.counts = ProgressCounts(total, description)
        self.interval_s = interval_s
        self._clock = clock
        self._timer_factory = timer
        self._timer: Timer | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.handle = (display or _ipython_display)(self.bundle())
        self._drawn_at = clock()

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                return
            change = self.counts.apply(event)
            if change is None:
                return
            if change == "end":
                self._closed = True
                self._cancel_timer()
                self._draw()
            elif self._clock() - self._drawn_at >= self.interval_s:
                self._cancel_timer()
                self._draw()
            elif self._timer is None:  # draw what is held back once the interval is over
                wait = self.interval_s - (self._clock() - self._drawn_at)
                run = contextvars.copy_context().run  # the cell's output context, in the timer
                self._timer = self._timer_factory(wait, lambda: run(self._flush))
                self._timer.daemon = True
                self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            if not self._closed:
                self._draw()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _draw(self) -> None:
        self._drawn_at = self._clock()
        if self.handle is not None:
            self.handle.update(self.bundle(), raw=True)

    def bundle(self) -> dict[str, str]:
        """The display data now: ``text/html`` and ``text/plain``."""
        return {"text/html": render_html(self.counts), "text/plain": render_text(self.counts)}


def _statuses(counts: ProgressCounts) -> list[tuple[str, int]]:
    known = [(s, counts.by_status[s]) for s in _ORDER if counts.by_status[s]]
    return known + sorted((s, n) for s, n in counts.by_status.items() if s not in _ORDER)


def render_text(counts: ProgressCounts) -> str:
    """``triage: 4/4 nodes (3 succeeded, 1 suspended), suspended``."""
    text = f"{counts.description}: {counts.done}/{counts.total} nodes"
    statuses = ", ".join(f"{n} {s}" for s, n in _statuses(counts))
    if statuses:
        text += f" ({statuses})"
    for path, (done, total) in counts.open_items().items():
        text += f"; {path} {done}/{total} items"
    if counts.running and not counts.status:
        text += f"; running {', '.join(sorted(counts.running))}"
    return f"{text}, {counts.status}" if counts.status else text


def render_html(counts: ProgressCounts) -> str:
    """A bar with a segment per status (palette colours), the counts, items of running
    foreach nodes and the run's status once it ended."""
    total = max(counts.total, counts.done, 1)
    segments = "".join(
        f"<div title='{n} {s}' style='width:{100 * n / total:.2f}%;"
        f"background:{status_colour(s)}'></div>" for s, n in _statuses(counts))
    legend = " ".join(
        f"<span style='color:{status_colour(s)}'>&#9679; {n} {html.escape(s)}</span>"
        for s, n in _statuses(counts))
    lines = [f"<b>{html.escape(counts.description)}</b> {counts.done}/{counts.total} nodes"
             + (f" &middot; <span style='color:{status_colour(counts.status)}'>"
                f"<b>{html.escape(counts.status)}</b></span>" if counts.status else "")]
    lines.append("<div style='display:flex;width:24em;max-width:100%;height:0.6em;"
                 "border-radius:0.3em;overflow:hidden;margin:0.2em 0;"
                 f"background:{status_colour('pending')}'>{segments}</div>")
    if legend:
        lines.append(legend)
    for path, (done, of) in counts.open_items().items():
        lines.append(f"<code>{html.escape(path)}</code> {done}/{of} items")
    if counts.running and not counts.status:
        running = ", ".join(f"<code>{html.escape(p)}</code>" for p in sorted(counts.running))
        lines.append(f"<span style='color:{status_colour('running')}'>running</span> {running}")
    body = "".join(f"<div>{line}</div>" for line in lines)
    return f"<div class='fm-lab-progress' style='font-size:0.9em'>{body}</div>"
