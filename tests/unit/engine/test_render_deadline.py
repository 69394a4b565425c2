"""A template that renders too long is stopped with a clear error; the process, and the
code that runs after a render, are not disturbed."""

from __future__ import annotations

import threading
import time

import pytest

import fm_lab
from fm_lab.engine import render_deadline
from fm_lab.engine.render_deadline import RenderTimeout
from fm_lab.engine.templating import render_template
from fm_lab.store.memory_store import MemoryStore

NESTED = ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
          "{% endfor %}done")


@pytest.fixture
def short_deadline(monkeypatch):
    monkeypatch.setattr(render_deadline, "MAX_RENDER_S", 0.3)


def test_nested_loops_are_stopped_and_the_node_fails_clearly(short_deadline):
    flow = {"id": "cpu", "nodes": {"spin": {"type": "template", "config": {
        "template": NESTED}}}}
    run = fm_lab.run(flow, store=MemoryStore(), policy="restricted")
    assert run.status == "failed" and run.error is not None
    assert "rendering took longer than 0.3 s, the template sandbox's limit" in (
        run.error["message"])
    again = fm_lab.run({"id": "ok", "nodes": {"t": {"type": "template", "config": {
        "template": "{{ 1 + 1 }}"}}}}, store=MemoryStore())
    assert again.status == "succeeded" and again.outputs == {"t": 2}


def test_a_render_that_ends_in_time_leaves_nothing_behind(short_deadline):
    for _ in range(200):
        assert render_template("{{ x * 2 }}", {"x": 2}) == 4
    time.sleep(render_deadline.MAX_RENDER_S + 3 * render_deadline.POLL_S)  # no stray timeout
    assert not render_deadline._WATCHDOG.renders and not render_deadline._WATCHDOG.fired


def test_renders_in_other_threads_keep_their_own_deadlines(short_deadline):
    outcomes: dict[str, object] = {}

    def spin() -> None:
        try:
            render_template(NESTED, {})
        except RenderTimeout as exc:
            outcomes["spin"] = exc

    def quick() -> None:
        outcomes["quick"] = [render_template("{{ 3 }}", {}) for _ in range(100)]

    threads = [threading.Thread(target=spin), threading.Thread(target=quick)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert isinstance(outcomes["spin"], RenderTimeout)
    assert outcomes["quick"] == [3] * 100
