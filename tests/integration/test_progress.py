"""Progress bars: a run's nodes and a foreach's items are counted as they finish."""

from __future__ import annotations

import io

import nbformat

import fm_lab
from fm_lab.palette import status_colour
from fm_lab.progress import RunProgress, in_notebook

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)


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


def test_progress_shows_by_default_in_a_notebook(tmp_path):
    """The notebook half: in a real kernel, a run draws its progress with no argument, as
    HTML whose saved state is the run's end (a reopened notebook shows 1/1, not 0/1), and
    ``progress=False`` hides it."""
    from nbformat.v4 import new_code_cell, new_notebook

    from fm_lab.batch.nbexec import execute_notebook

    nb = new_notebook(cells=[
        new_code_cell("import fm_lab\n"
                      "from fm_lab.progress import in_notebook\n"
                      "print(in_notebook())"),
        new_code_cell("wf = {'id': 'loud', 'nodes': {'a': {'type': 'template',\n"
                      "                                   'config': {'template': 'x'}}}}\n"
                      "run = fm_lab.run(wf)"),
        new_code_cell("run = fm_lab.run({**wf, 'id': 'hushed'}, progress=False)"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    source = tmp_path / "progress.ipynb"
    nbformat.write(nb, source)
    # the batch runner turns bars off in its kernels; this kernel is a notebook's as a person
    # runs it
    result = execute_notebook(source, tmp_path / "out.ipynb", {}, env={"FM_LAB_PROGRESS": ""},
                              timeout=120)
    assert result["status"] == "succeeded", result["error"]
    cells = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells
    cells = [c for c in cells if "injected-parameters" not in c.metadata.get("tags", [])]
    assert [o.get("text") for o in cells[0].outputs] == ["True\n"]
    [bar] = cells[1].outputs  # one display, saved as its last update: the final state
    assert bar["output_type"] == "display_data"
    assert "application/vnd.jupyter.widget-view+json" not in bar["data"]  # no widget state
    assert bar["data"]["text/plain"] == "loud: 1/1 nodes (1 succeeded), succeeded"
    assert "1/1 nodes" in bar["data"]["text/html"]
    assert f"color:{status_colour('succeeded')}" in bar["data"]["text/html"]
    assert cells[2].outputs == []


def test_progress_is_hidden_by_default_in_a_terminal(store, capsys):
    """The terminal half: no bar unless asked for."""
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
