"""The notebooks in ``notebooks/`` run top to bottom on the offline model; their asserts hold
and what they show is what a reader is told they will see."""

from __future__ import annotations

import pytest


def _outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            data = out.get("data", {})
            parts.append(data.get("text/plain", ""))
            parts.append(data.get("text/html", ""))
    return "\n".join(parts)


def _images(nb) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells
               for out in cell.get("outputs", []))


def test_quickstart(execute):
    nb = execute("quickstart.ipynb")
    shown = _outputs(nb)
    assert "succeeded" in shown and "no_such_type" in shown
    assert "We are on it: broken and slow." in shown  # the edited node's re-run
    assert _images(nb) >= 1  # the trace waterfall


def test_human_in_the_loop(execute):
    nb = execute("human_in_the_loop.ipynb")
    shown = _outputs(nb)
    assert "manager" in shown and "approved" in shown
    assert "booked 420 for Ada" in shown and "booked 12 for Bob" in shown


@pytest.mark.parametrize("name", ["traces_and_costs.ipynb"])
def test_traces_and_costs(execute, name):
    nb = execute(name)
    shown = _outputs(nb)
    assert "gpt-4o-mini" in shown and "offline/support" in shown
    assert _images(nb) >= 2
