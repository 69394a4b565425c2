"""A papermill user can switch to fm_lab without surprises: notebooks written for these tests
run through papermill 2.7's command line and ``fm-lab notebook`` (and through papermill with
fm_lab as its engine) end the same way: outcome, exit code, injected cell, warnings, error
markers, per-cell ``metadata.papermill``. A runner killed mid-notebook leaves its partial
output on disk and its item reads as ``interrupted``."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import fm_lab
import fm_lab.batch
from fm_lab.cli import main

SRC = str(Path(fm_lab.__file__).resolve().parents[1])  # kernels import this fm_lab
STORES = ("duckdb", "postgres")  # tests taking `store` run on both (root conftest)
MARKER_TAG = "papermill-error-cell-tag"
UNKNOWN = "Passed unknown parameter: {}"
NO_CELL = "Input notebook does not contain a cell with tag 'parameters'"

# name: (cells after the parameters cell or None for no parameters cell, CLI arguments,
#        expected: succeeded?, exit code, warnings)
CASES: dict[str, tuple[list[str] | None, list[str], bool, int, list[str]]] = {
    "success": (["print(msg)"], ["-p", "msg", "True", "-r", "n", "7"], True, 0, []),
    "syntax_error": (["print(msg)", "def broken(:\n    pass", "after = 1"],
                     ["-p", "msg", "hi"], False, 1, []),
    "failing_cell": (["print(msg)", "raise ValueError(f'bad {msg}')", "after = 1"],
                     ["-y", "msg: 3"], False, 1, []),
    "sys_exit_0": (["import sys\nprint(msg)", "sys.exit(0)", "after = 1"],
                   ["-p", "msg", "None"], True, 0, []),
    "sys_exit_1": (["import sys", "sys.exit(1)", "after = 1"], [], False, 1, []),
    "no_parameters_cell": (None, ["-p", "msg", "hi"], True, 0,
                           [UNKNOWN.format("msg"), NO_CELL]),
    "unknown_parameter": (["print(msg)"], ["-p", "msg", "hi", "-p", "colour", "red"], True, 0,
                          [UNKNOWN.format("colour")]),
    "relative_path": (["print(open('data.txt').read())"], [], True, 0, []),  # in the cwd
    "relative_path_cwd": (["print(open('data.txt').read())"], ["--cwd", "work"], True, 0, []),
    "usage_error": (["%no_such_magic", "after = 1"], [], False, 1, []),
    "timeout": (["import time", "time.sleep(60)", "after = 1"],
                ["--execution-timeout", "2"], False, 1, []),
}


def _write(path: Path, parameters: str | None, cells: list[str], top: tuple[Any, ...] = ()
           ) -> Path:
    """A Python notebook: the ``top`` cells, a ``parameters`` cell (unless None), code cells."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    body = [new_code_cell(source) for source in cells]
    if parameters is not None:
        body.insert(0, new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells = [*top, *body]
    nbformat.write(nb, path)
    return path


def _notebook(path: Path, cells: list[str] | None) -> Path:
    # a stale banner from an earlier papermill run: both runners drop it
    stale = new_markdown_cell("<span>An Exception was encountered at In [1]</span>",
                              metadata={"tags": [MARKER_TAG]})
    return _write(path, None if cells is None else "msg = 'default'  # the message\nn = 0",
                  cells or ["print('no parameters')"],
                  (stale, new_markdown_cell("# a notebook")))


def _in_folder(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work in ``path``, with kernels still importing this fm_lab."""
    monkeypatch.chdir(path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))


def _warnings(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith(logger) and r.levelno == logging.WARNING]


def _summary(path: Path) -> dict[str, Any]:
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    return {
        "injected": [(i, c.source) for i, c in enumerate(cells)
                     if "injected-parameters" in c.metadata.get("tags", [])],
        "markers": [(i, c.source) for i, c in enumerate(cells)
                    if MARKER_TAG in c.metadata.get("tags", [])],
        "counts": [c.get("execution_count") for c in cells],
        "outputs": [[o.get("output_type") for o in c.get("outputs", [])] for c in cells],
        "status": [c.metadata.get("papermill", {}).get("status") for c in cells],
        "exception": nb.metadata["papermill"]["exception"],
        "parameters": nb.metadata["papermill"]["parameters"],
        "keys": sorted(nb.metadata["papermill"]),
        "cell_keys": sorted({k for c in cells for k in c.metadata.get("papermill", {})}),
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_papermill_and_fm_lab_end_the_same_way(case, tmp_path, caplog, monkeypatch):
    from papermill.cli import papermill as papermill_cli

    cells, args, succeeded, code, warned = CASES[case]
    (tmp_path / "nbs").mkdir()
    source = _notebook(tmp_path / "nbs" / f"{case}.ipynb", cells)
    work = tmp_path / "work"  # the kernel's cwd: not the notebook's folder
    work.mkdir()
    (work / "data.txt").write_text("read relative to the cwd")
    _in_folder(work if case == "relative_path" else tmp_path, monkeypatch)
    caplog.set_level(logging.WARNING)
    theirs = CliRunner().invoke(papermill_cli, [
        str(source), str(tmp_path / "theirs.ipynb"), "--no-progress-bar", "--log-level",
        "WARNING", *args])
    their_warnings = _warnings(caplog, "papermill")
    caplog.clear()
    ours = main(["--store", str(tmp_path / "fm.duckdb"), "notebook", str(source),
                 str(tmp_path / "ours.ipynb"), "--batch-id", "parity", *args])
    assert (theirs.exit_code, ours) == (code, code), theirs.output
    assert their_warnings == _warnings(caplog, "fm_lab") == warned
    their_nb, our_nb = _summary(tmp_path / "theirs.ipynb"), _summary(tmp_path / "ours.ipynb")
    if case == "timeout":  # papermill calls the timed-out cell (and those after) completed
        assert their_nb.pop("status")[-3:] == ["completed"] * 3
        assert our_nb.pop("status")[-3:] == ["completed", "failed", "pending"]
        their_nb.pop("exception"), our_nb.pop("exception")
    assert our_nb == their_nb
    stored = fm_lab.Store(tmp_path / "fm.duckdb")
    item = fm_lab.batch.status("parity", store=stored).iloc[0]
    stored.close()
    assert (item["status"] == "succeeded") is succeeded
    assert item["output_path"] == str(tmp_path / "ours.ipynb")  # absolute
    if our_nb["markers"]:  # the recorded cell is the failing one, in the notebook as written
        assert item["error_cell"] == our_nb["markers"][1][0] + 1
    if case == "usage_error":  # no error output: the message is the kernel's, not nbclient's
        assert item["error"]["message"].startswith("UsageError: Line magic function")
    if case.startswith("relative_path"):  # read in the kernel's cwd, not the notebook's
        assert our_nb["outputs"][-1] == ["stream"]


def _flow_notebook(path: Path) -> Path:
    return _write(path, "x = 0", [
        "assert x < 5, 'x too big'",
        "import fm_lab\n"
        "flow = {'id': 'pm_flow', 'nodes': {'ask': {'type': 'llm', 'config': {\n"
        "    'model': 'offline/echo', 'prompt': 'x is {{ inputs.x }}'}}}}\n"
        "run = fm_lab.run(flow, {'x': x})"])


def _entry_points_dist(folder: Path) -> Path:
    """A distribution declaring pyproject.toml's entry points (this venv's fm_lab install
    predates them), for a ``papermill`` process to find."""
    import tomllib

    declared = tomllib.loads((Path(SRC).parent / "pyproject.toml").read_text())
    groups = declared["project"]["entry-points"]
    info = folder / "fm_lab_entry_points-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fm_lab_entry_points\n"
                                   "Version: 0\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in names.items())
        for group, names in groups.items()))
    return folder


def test_papermill_with_the_fm_lab_engine_records_runs_spans_and_cost(tmp_path, monkeypatch):
    import papermill
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    from fm_lab.batch.papermill_engine import FmLabEngine
    from fm_lab.store.default import default_store
    from fm_lab.tracing.pricing import set_price

    _in_folder(tmp_path, monkeypatch)
    monkeypatch.setenv("FM_LAB_STORE", str(tmp_path / "fm.duckdb"))
    source = _flow_notebook(tmp_path / "flow.ipynb")
    # papermill's command line finds the engine through the declared entry point
    sites = _entry_points_dist(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(sites), os.environ["PYTHONPATH"]])}
    done = subprocess.run([sys.executable, "-m", "papermill", "--engine", "fm_lab", str(source),
                           "ok.ipynb", "-p", "x", "2", "--no-progress-bar"], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Recorded in the fm_lab store" in done.stderr
    # in this process: registered by hand, with papermill's engine keyword arguments
    monkeypatch.setitem(papermill_engines._engines, "fm_lab", FmLabEngine)
    with pytest.raises(PapermillExecutionError, match="x too big"):
        papermill.execute_notebook(str(source), "bad.ipynb", {"x": 9}, engine_name="fm_lab",
                                   progress_bar=False, batch_id="pm-bad")
    store = default_store()  # $FM_LAB_STORE, as the engine's
    set_price("offline/echo", input_per_mtok=100.0, output_per_mtok=100.0)
    [ok_batch] = fm_lab.sql("select batch_id from batches where batch_id <> 'pm-bad'",
                            store=store)["batch_id"]
    ok = fm_lab.batch.status(ok_batch, store=store).iloc[0]
    assert ok["status"] == "succeeded" and ok["output_path"] == str(tmp_path / "ok.ipynb")
    assert ok["input_tokens"] > 0 and ok["cost_usd"] > 0  # the kernel's run, in the item
    bad = fm_lab.batch.status("pm-bad", store=store).iloc[0]
    assert bad["status"] == "failed" and bad["error"]["evalue"] == "x too big"
    written = nbformat.read(tmp_path / "bad.ipynb", as_version=4)
    assert MARKER_TAG in written.cells[bad["error_cell"] - 1].metadata["tags"]  # its anchor
    assert written.cells[bad["error_cell"]].outputs[-1]["output_type"] == "error"
    spans = fm_lab.sql("select kind, count(*) as n from spans where trace_id = ? group by 1",
                       [ok["trace_id"]], store=store)
    assert {"batch_item", "workflow", "llm"} <= set(spans["kind"])


def test_an_item_left_running_by_a_dead_process_reads_as_interrupted(store, tmp_path):
    from fm_lab.batch.liveness import hold, release
    from fm_lab.batch.records import Item, ensure_batch, save_item

    ensure_batch(store, "gone", "notebook", "nb.ipynb", "local", tmp_path)
    item = Item("gone", "0", 0, {"x": 1}, status="running", attempts=1, started=time.time())
    save_item(store, item, "notebook", "nb.ipynb")  # as a runner killed mid-item left it
    assert fm_lab.batch.status("gone", store=store)["status"].tolist() == ["interrupted"]
    hold(store, "gone")  # a live runner
    try:
        assert fm_lab.batch.status("gone", store=store)["status"].tolist() == ["running"]
    finally:
        release(store, "gone")


@pytest.mark.slow
def test_a_killed_runner_leaves_partial_output_and_an_interrupted_item(tmp_path):
    source = _write(tmp_path / "long.ipynb", "marker = ''", [
        "print('first cell done')",
        "import os, pathlib, time\npathlib.Path(marker).write_text(str(os.getpid()))\n"
        "time.sleep(600)",
        "after = 1"])
    marker, out, db = tmp_path / "kernel.pid", tmp_path / "out.ipynb", tmp_path / "fm.duckdb"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    runner = subprocess.Popen(
        [sys.executable, "-m", "fm_lab.cli", "--store", str(db), "notebook", str(source),
         str(out), "-p", "marker", str(marker), "--batch-id", "killed"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kernel = None
    try:
        deadline = time.monotonic() + 120  # a hang guard, not a timing assertion
        while not marker.exists() or not marker.read_text():
            assert runner.poll() is None, runner.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the kernel never reached the long cell"
            time.sleep(0.05)
        kernel = int(marker.read_text())
        runner.send_signal(signal.SIGKILL)
        runner.communicate()
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
        if kernel is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kernel, signal.SIGKILL)
    partial = nbformat.read(out, as_version=4)  # saved as the long cell started
    assert [o["text"] for o in partial.cells[2].outputs] == ["first cell done\n"]
    assert [c.metadata.papermill["status"] for c in partial.cells] == [
        "completed", "completed", "completed", "running", "pending"]
    stored = fm_lab.Store(db)
    assert fm_lab.batch.status("killed", store=stored)["status"].tolist() == ["interrupted"]
    stored.close()
    shown = subprocess.run([sys.executable, "-m", "fm_lab.cli", "--store", str(db), "batch",
                            "status", "killed", "--json"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=False)
    assert shown.returncode == 1
    assert [i["status"] for i in json.loads(shown.stdout)] == ["interrupted"]
