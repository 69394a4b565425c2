"""Notebook batches: real kernels through nbclient, papermill's injection, failures with their
cell, resume, and runs started inside a notebook linked to the batch item."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import fm_lab
import fm_lab.batch
from fm_lab.store.base import shard_dir

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

FLOW = (
    "node = ({'type': 'llm', 'config': {'model': model, 'prompt': 'x is {{ inputs.x }}'}}\n"
    "        if model else {'type': 'template', 'config': {'template': 'x is {{ inputs.x }}'}})\n"
    "flow = {'id': 'nb_flow', 'inputs': {'type': 'object', 'properties': {'x': {}}},\n"
    "        'nodes': {'ask': node}}\n"
)


def _write_notebook(path: Path) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    params = new_code_cell("x = 0\nfail_if = None\nmodel = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        new_markdown_cell("# a parameterised notebook"),
        new_code_cell("import os\nimport fm_lab"),
        params,
        new_code_cell(FLOW + "run = fm_lab.run(flow, {'x': x})\nprint(run.run_id)"),
        new_code_cell("if fail_if is not None and os.path.exists(fail_if):\n"
                      "    raise RuntimeError(f'marker {fail_if} present')"),
        new_code_cell("result = run.outputs"),
    ]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    return _write_notebook(tmp_path / "analysis.ipynb")


def _injected(nb):
    return [(i, c.source) for i, c in enumerate(nb.cells)
            if "injected-parameters" in c.metadata.get("tags", [])]


def test_run_notebook_records_the_item_and_links_runs_inside(store, notebook, tmp_path):
    out = tmp_path / "out" / "done.ipynb"
    params = {"x": 41, "model": "offline/echo"}
    item = fm_lab.batch.run_notebook(notebook, params, out, batch_id="nb-one", store=store)
    assert item.status == "succeeded", item.error
    assert item.output_path == str(out) and item.duration_ms > 0
    executed = nbformat.read(out, as_version=4)
    assert _injected(executed) == [  # right after the parameters cell
        (3, '# Parameters\nx = 41\nmodel = "offline/echo"\n')]
    meta = executed.metadata["papermill"]
    assert meta["parameters"] == params and meta["exception"] is None
    assert meta["input_path"] == str(notebook) and meta["output_path"] == str(out)
    run_id = executed.cells[4].outputs[0]["text"].strip()
    run = fm_lab.get_run(run_id, store=store)
    assert run.status == "succeeded" and run.outputs == {"ask": "(offline) x is 41"}
    tree = fm_lab.trace(run_id, store=store)  # the item span is the root of the run's trace
    assert tree.iloc[0]["kind"] == "batch_item" and tree.iloc[0]["name"] == "nb-one[0]"
    assert tree.loc[tree["kind"] == "workflow", "depth"].tolist() == [1]
    row = fm_lab.batch.status("nb-one", store=store).iloc[0]
    assert row["status"] == "succeeded" and row["parameters"] == params
    assert row["input_tokens"] > 0  # the notebook's model calls roll up into its item


def test_failing_notebook_records_the_failing_cell(store, notebook, tmp_path):
    marker = tmp_path / "marker"
    marker.touch()
    out = tmp_path / "failed.ipynb"
    item = fm_lab.batch.run_notebook(notebook, {"x": 1, "fail_if": str(marker)}, out,
                                     store=store)
    assert item.status == "failed"
    # the index in the written notebook: papermill's banner on top, its anchor above the cell
    assert item.error_cell == 7 and item.error["cell"] == 7
    assert item.error["ename"] == "RuntimeError" and "marker" in item.error["evalue"]
    assert "raise RuntimeError" in item.error["traceback"]
    executed = nbformat.read(out, as_version=4)  # written although a cell failed
    assert executed.metadata["papermill"]["exception"] is True
    assert "In [5]" in executed.cells[0].source
    assert 'id="papermill-error-cell"' in executed.cells[6].source
    assert executed.cells[7].outputs[-1]["output_type"] == "error"
    assert executed.cells[8].metadata.papermill["status"] == "pending"
    assert executed.cells[8].get("outputs") == []
    row = fm_lab.batch.status(item.batch_id, store=store).iloc[0]
    assert row["status"] == "failed" and row["error_cell"] == 7
    assert row["error"]["ename"] == "RuntimeError"


def test_a_cell_that_times_out_is_the_failing_cell(store, tmp_path):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    nb.cells = [new_code_cell("import time"), new_code_cell("time.sleep(60)"),
                new_code_cell("after = 1")]
    nbformat.write(nb, tmp_path / "slow.ipynb")
    item = fm_lab.batch.run_notebook(tmp_path / "slow.ipynb", {}, tmp_path / "out.ipynb",
                                     store=store, timeout=1.5)  # whole seconds
    assert item.status == "failed" and item.error["type"] == "CellTimeoutError"
    assert item.error_cell == 1  # no parameters: nothing injected, as papermill
    assert "timed out" in item.error["message"]


def test_resume_of_a_half_done_notebook_batch_runs_only_the_rest(store, notebook, tmp_path):
    marker = tmp_path / "marker"
    marker.touch()
    grid = [{"x": 1}, {"x": 2, "fail_if": str(marker)}, {"x": 3},
            {"x": 4, "fail_if": str(marker)}]
    first = fm_lab.batch.run_notebooks(notebook, grid, batch_id="half", store=store,
                                       concurrency=4, output_dir=tmp_path / "nbs")
    assert list(first["status"]) == ["succeeded", "failed", "succeeded", "failed"]
    done_at = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "nbs").glob("*.ipynb")}
    assert len(done_at) == 4
    marker.unlink()
    second = fm_lab.batch.run_notebooks(notebook, grid, batch_id="half", store=store,
                                        concurrency=4, output_dir=tmp_path / "nbs")
    assert (second["status"] == "succeeded").all()
    assert list(second["attempts"]) == [1, 2, 1, 2]
    again = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "nbs").glob("*.ipynb")}
    changed = sorted(name for name in again if again[name] != done_at[name])
    assert changed == ["analysis-1.ipynb", "analysis-3.ipynb"]
    runs_per_item = fm_lab.sql(
        "select b.item_key, count(r.run_id) as n from batch_items b left join runs r "
        "using (trace_id) where b.batch_id = 'half' group by 1 order by 1", store=store)
    assert list(runs_per_item["n"]) == [1, 2, 1, 2]  # failed items ran again, others did not


def test_injection_and_metadata_match_a_papermill_execution(store, notebook, tmp_path, caplog):
    import papermill

    caplog.set_level(logging.ERROR)
    params = {"x": 7, "fail_if": None}
    theirs_path = tmp_path / "papermill.ipynb"
    papermill.execute_notebook(str(notebook), str(theirs_path), parameters=params,
                               kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path))
    ours_path = tmp_path / "ours.ipynb"
    fm_lab.batch.run_notebook(notebook, params, ours_path, store=store)
    theirs = nbformat.read(theirs_path, as_version=4)
    ours = nbformat.read(ours_path, as_version=4)
    assert _injected(ours) == _injected(theirs)
    assert [c.source for c in ours.cells] == [c.source for c in theirs.cells]
    assert [c.metadata.get("tags", []) for c in ours.cells] == [
        c.metadata.get("tags", []) for c in theirs.cells]
    for key in ("parameters", "input_path", "exception"):
        assert ours.metadata["papermill"][key] == theirs.metadata["papermill"][key], key
    # re-running an executed notebook replaces the injected cell, as papermill does
    again = tmp_path / "again.ipynb"
    fm_lab.batch.run_notebook(ours_path, {"x": 8}, again, store=store)
    assert _injected(nbformat.read(again, as_version=4)) == [(3, "# Parameters\nx = 8\n")]
    assert json.loads(json.dumps(ours.metadata["fm_lab"]))["item"] == "0"


def test_bad_notebook_input_is_a_clear_error(store, tmp_path):
    with pytest.raises(FileNotFoundError, match="no notebook"):
        fm_lab.batch.run_notebook(tmp_path / "missing.ipynb", {}, store=store)
    (tmp_path / "junk.ipynb").write_text("not json")
    with pytest.raises(ValueError, match="not a readable Jupyter notebook"):
        fm_lab.batch.run_notebook(tmp_path / "junk.ipynb", {}, store=store)
    assert fm_lab.sql("select count(*) as n from batches", store=store)["n"][0] == 0


def test_notebooks_on_dask_need_a_file_store(notebook):
    with pytest.raises(ValueError, match="needs a store its workers can reach"):
        fm_lab.batch.run_notebooks(notebook, [{"x": 1}], store=fm_lab.Store(":memory:"),
                                   executor="dask")


def test_notebooks_on_dask_bring_their_runs_back_as_shards(store, notebook):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        frame = fm_lab.batch.run_notebooks(notebook, {"x": [1, 2]}, executor=client,
                                           batch_id="nbd", store=store)
    assert list(frame["status"]) == ["succeeded", "succeeded"]
    folder = shard_dir(store)  # None: a server store, which the kernels wrote directly
    stored = fm_lab.sql("select count(*) as n from runs", store=store)["n"][0]
    assert stored == (0 if folder is not None else 2)
    runs = fm_lab.sql("select r.run_id, b.item_key from all_runs r join batch_items b "
                      "using (trace_id) where b.batch_id = 'nbd' order by 2", store=store)
    assert list(runs["item_key"]) == ["0", "1"]  # the kernels' runs, linked to their items
    if folder is not None:
        assert not list((folder / "nbd" / "tmp").glob("*.duckdb"))
