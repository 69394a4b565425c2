"""The notebook's progress display: plain HTML updated in place, so a saved notebook keeps
the run's final state (counts per status, done/total) in the palette's colours."""

from __future__ import annotations

import pytest

import fm_lab
from fm_lab.palette import status_colour
from fm_lab.progress import listener
from fm_lab.progress_display import HtmlProgress


@pytest.fixture
def store():
    return fm_lab.Store(":memory:")


class Handle:
    def __init__(self, bundle):
        self.shown = [bundle]

    def update(self, bundle, raw=False):
        assert raw
        self.shown.append(bundle)


class Timer:
    made: list[Timer] = []

    def __init__(self, wait, function):
        self.wait, self.function, self.started, self.cancelled = wait, function, False, False
        Timer.made.append(self)

    def start(self):
        self.started = True

    def cancel(self):
        self.cancelled = True


def node(node_id, status):
    return {"type": "node", "path": node_id, "node_id": node_id, "status": status}


def progress(clock=lambda: 0.0):
    Timer.made = []
    return HtmlProgress(4, "triage", display=Handle, clock=clock, timer=Timer)


def test_the_final_state_is_what_the_display_keeps():
    bar = progress()
    assert "0/4 nodes" in bar.handle.shown[0]["text/plain"]
    for event in (node("a", "running"), node("a", "succeeded"), node("b", "succeeded"),
                  node("c", "failed"), node("d", "suspended"),
                  {"type": "run", "status": "suspended"}):
        bar(event)
    final = bar.handle.shown[-1]
    assert final["text/plain"] == ("triage: 4/4 nodes (2 succeeded, 1 suspended, 1 failed), "
                                   "suspended")
    page = final["text/html"]
    assert "4/4 nodes" in page
    for status in ("succeeded", "suspended", "failed"):
        assert f"color:{status_colour(status)}'>&#9679;" in page  # the legend
        assert f"background:{status_colour(status)}" in page  # the bar's segment
    assert status_colour("suspended") == "#f59e0b" and status_colour("failed") == "#ef4444"
    assert "running" not in final["text/plain"]


def test_throttled_updates_never_lose_the_end():
    bar = progress()  # the clock stands still: every change falls inside the interval
    for event in (node("a", "succeeded"), node("b", "succeeded"), node("c", "succeeded")):
        bar(event)
    assert len(bar.handle.shown) == 1  # held back ...
    [timer] = Timer.made  # ... with one timer to draw it later
    assert timer.started and 0 < timer.wait <= bar.interval_s
    bar(node("d", "succeeded"))
    bar({"type": "run", "status": "succeeded"})
    assert timer.cancelled and len(bar.handle.shown) == 2
    assert bar.handle.shown[-1]["text/plain"] == "triage: 4/4 nodes (4 succeeded), succeeded"
    bar(node("late", "failed"))  # nothing after the end changes the saved state
    timer.function()
    assert len(bar.handle.shown) == 2


def test_a_held_back_change_is_drawn_by_the_timer():
    bar = progress()
    bar(node("a", "running"))
    bar(node("a", "succeeded"))
    assert len(bar.handle.shown) == 1
    Timer.made[0].function()  # the interval is over
    assert "1/4 nodes (1 succeeded)" in bar.handle.shown[-1]["text/plain"]


def test_a_change_after_the_interval_is_drawn_at_once():
    now = [0.0]
    bar = progress(clock=lambda: now[0])
    events = [{"type": "items", "path": "loop", "node_id": "loop", "total": 3},
              node("loop", "running"),
              {"type": "node", "path": "loop[0]", "node_id": "loop", "status": "succeeded"}]
    for event in events:
        now[0] += bar.interval_s  # each change comes a whole interval after the last
        bar(event)
    assert len(bar.handle.shown) == 4 and not Timer.made
    assert bar.handle.shown[-1]["text/plain"] == "triage: 0/4 nodes; loop 1/3 items; running loop"
    assert "<code>loop</code> 1/3 items" in bar.handle.shown[-1]["text/html"]


def test_a_run_in_a_kernel_draws_html(monkeypatch, store):
    handles = []
    monkeypatch.setattr("fm_lab.progress.kernel_display", lambda: True)
    monkeypatch.setattr("fm_lab.progress_display._ipython_display",
                        lambda bundle: handles.append(Handle(bundle)) or handles[-1])
    wf = {"id": "loud", "nodes": {"a": {"type": "template", "config": {"template": "x"}},
                                  "b": {"type": "template", "config": {"template": "y"}}},
          "edges": ["a -> b"]}
    assert fm_lab.run(wf, store=store, progress=True).status == "succeeded"
    [handle] = handles
    assert handle.shown[-1]["text/plain"] == "loud: 2/2 nodes (2 succeeded), succeeded"
    assert listener(1, "x", False, None) is None


def test_run_html_colours_statuses_from_the_palette(store):
    wf = {"id": "wait", "nodes": {"a": {"type": "template", "config": {"template": "x"}},
                                  "ok": {"type": "approval", "config": {"message": "go?"}}},
          "edges": ["a -> ok"]}
    page = fm_lab.run(wf, store=store)._repr_html_()
    assert f"<b><span style='color:{status_colour('suspended')}'>suspended</span></b>" in page
    assert f"<span style='color:{status_colour('succeeded')}'>succeeded</span>" in page
    assert "#6d4c41" not in page  # the old brown
