"""A deadline for template rendering: a render that runs longer than :data:`MAX_RENDER_S`
(loops nested over large ranges or inputs) is stopped with :class:`RenderTimeout`.

Jinja compiles a template to Python, and Python cannot stop another thread's code from
outside except by handing it an exception (``PyThreadState_SetAsyncExc``), raised at its next
bytecode. One watchdog thread keeps the deadlines of renders under way; when one passes, it
hands that thread :class:`RenderTimeout`. The hand-over happens under the same lock the render
takes to finish, and a render that finishes with an exception handed to it but not yet raised
withdraws it, so the exception is raised inside the render or not at all. A single C call
(sorting a huge list) is not interrupted until it returns.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import threading
import time
from collections.abc import Iterator

from jinja2.exceptions import SecurityError

MAX_RENDER_S = 10.0
"""Seconds one template may take to render (a module constant a caller may change)."""
POLL_S = 0.25
"""How often the watchdog looks at the deadlines (renders do not wake it)."""


class RenderTimeout(SecurityError):
    """A template took longer than :data:`MAX_RENDER_S` to render."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or f"rendering took longer than {MAX_RENDER_S:g} s, the "
                         "template sandbox's limit")


class _Watchdog:
    """The deadlines of renders under way, and the thread that enforces them."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.renders: dict[int, tuple[int, float]] = {}  # token -> (thread id, deadline)
        self.fired: set[int] = set()
        self.tokens = itertools.count()
        self.thread: threading.Thread | None = None

    def start(self, seconds: float) -> int:
        with self.lock:
            token = next(self.tokens)
            self.renders[token] = (threading.get_ident(), time.monotonic() + seconds)
            if self.thread is None:
                self.thread = threading.Thread(target=self._watch, daemon=True,
                                               name="fm_lab-render-deadline")
                self.thread.start()
            return token  # no wake-up: the watchdog looks every POLL_S

    def finish(self, token: int) -> None:
        with self.lock:
            thread_id, _ = self.renders.pop(token)
            if token in self.fired:  # handed over: withdraw it if it was not raised yet
                self.fired.discard(token)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)

    def _watch(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                for token, (thread_id, deadline) in self.renders.items():
                    if deadline <= now and token not in self.fired:
                        self.fired.add(token)
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(thread_id), ctypes.py_object(RenderTimeout))
                self.lock.wait(timeout=POLL_S)


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def render_deadline(seconds: float | None = None) -> Iterator[None]:
    """Stop the code inside the block with :class:`RenderTimeout` after ``seconds``
    (default :data:`MAX_RENDER_S`); blocks nested in one thread each keep their own."""
    token = _WATCHDOG.start(MAX_RENDER_S if seconds is None else seconds)
    try:
        yield
    finally:
        late: RenderTimeout | None = None
        while True:  # handed over just as the block ended: it is raised here, once
            try:
                _WATCHDOG.finish(token)
                break
            except RenderTimeout as exc:
                late = exc
        if late is not None:
            raise late
