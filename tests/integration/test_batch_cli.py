"""``fm-lab batch``: workflow and notebook batches, status, clear errors."""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from fm_lab.cli import main

FLOW = {
    "id": "cli_sweep",
    "inputs": {"type": "object", "required": ["name"],
               "properties": {"name": {"type": "string"}}},
    "nodes": {"greet": {"type": "llm", "config": {"model": "offline/echo",
                                                  "prompt": "hello {{ inputs.name }}"}}},
}


def test_workflow_batch_prints_a_summary_and_resumes(tmp_path, capsys):
    db = str(tmp_path / "fm.duckdb")
    flow = tmp_path / "flow.yaml"
    flow.write_text(yaml.safe_dump(FLOW))
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"name": ["ada", "bob", None]}).to_csv(rows, index=False)
    code = main(["--store", db, "batch", "workflow", str(flow), "--csv", str(rows),
                 "--batch-id", "cli1", "--concurrency", "2"])
    out = capsys.readouterr()
    assert code == 1  # the row without a name failed validation
    assert "batch cli1: 2 succeeded, 1 not succeeded" in out.out
    assert "resume with --batch-id cli1" in out.out
    assert "item" in out.err  # the tqdm bar
    code = main(["--store", db, "batch", "status", "cli1", "--json"])
    items = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [i["status"] for i in items] == ["succeeded", "succeeded", "failed"]
    assert items[0]["outputs"] == {"greet": "(offline) hello ada"}
    assert items[0]["input_tokens"] > 0


def test_notebook_batch_from_a_grid_with_fixed_parameters(tmp_path, capsys):
    db = str(tmp_path / "fm.duckdb")
    nb = new_notebook()
    params = new_code_cell("a = 0\nb = 0\nlabel = ''")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell("assert a + b < 5, label")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    path = tmp_path / "calc.ipynb"
    nbformat.write(nb, path)
    grid = tmp_path / "grid.yaml"
    grid.write_text("a: [1, 4]\nb: [2]\n")
    code = main(["--store", db, "batch", "notebook", str(path), "--grid", str(grid),
                 "-p", "label", "too big", "--batch-id", "nbcli", "--json",
                 "--output-dir", str(tmp_path / "out")])
    items = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [i["parameters"] for i in items] == [{"a": 1, "b": 2, "label": "too big"},
                                                {"a": 4, "b": 2, "label": "too big"}]
    assert [i["status"] for i in items] == ["succeeded", "failed"]
    assert items[1]["error_cell"] == 4 and items[1]["error"]["evalue"] == "too big"  # markers
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["calc-0.ipynb",
                                                                   "calc-1.ipynb"]


def test_batch_errors_are_messages_not_tracebacks(tmp_path, capsys):
    db = str(tmp_path / "fm.duckdb")
    assert main(["--store", db, "batch", "status", "nope"]) == 1
    assert "no batch 'nope'" in capsys.readouterr().err
    assert main(["--store", db, "batch", "workflow", str(tmp_path / "x.yaml"), "--csv",
                 str(tmp_path / "missing.csv")]) == 1
    assert "no parameters file" in capsys.readouterr().err
