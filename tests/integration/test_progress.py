"""Progress bars: a run's nodes and a foreach's items are counted as they finish."""

from __future__ import annotations

import io

import fm_lab
from fm_lab.progress import RunProgress, in_notebook


def test_progress_counts_nodes_and_items(store):
    wf = {
        "id": "progress_demo",
        "nodes": {
            "a": {"type": "template", "config": {"template": "x"}},
            "loop": {
                "type": "foreach",
                "config": {
                    "items": [1, 2, 3],
                    "node": {"type": "template", "config": {"template": "{{ item }}"}},
                },
            },
        },
        "edges": ["a -> loop"],
    }
    out = io.StringIO()
    bar = RunProgress(2, "progress_demo", file=out)
    run = fm_lab.run(wf, store=store, on_event=bar)
    assert run.status == "succeeded"
    assert bar.done == 2 and bar.bar.n == 2 and not bar.items
    text = out.getvalue()
    assert "progress_demo" in text and "2/2" in text and "succeeded" in text
    assert bar.items_done == {"loop": 3}


def test_progress_shows_by_default_only_in_notebooks(store, capsys):
    assert not in_notebook()
    fm_lab.run(
        {"id": "quiet", "nodes": {"a": {"type": "template", "config": {"template": "x"}}}},
        store=store,
    )
    assert capsys.readouterr().err == ""
    fm_lab.run(
        {"id": "loud", "nodes": {"a": {"type": "template", "config": {"template": "x"}}}},
        store=store,
        progress=True,
    )
    assert "loud" in capsys.readouterr().err
