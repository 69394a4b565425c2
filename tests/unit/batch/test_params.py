"""Parameter injection matches papermill's (placement, source, tags, metadata); items from
grids, tables and files."""

import copy
import logging

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from fm_lab.batch.params import as_items, expand_grid, inject_parameters, parameters_source

PARAMS = {
    "model": 'gpt-4o "mini"\n', "n": 3, "ratio": 0.25, "flag": True, "nothing": None,
    "tags": ["a", 1, None], "cfg": {"k": [1.5, False], "nested": {"x": "y"}},
    "nan": float("nan"), "inf": float("-inf"), "uni": "héllo\tthere",
}


def _notebook(*tags_per_cell):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    for i, tags in enumerate(tags_per_cell):
        cell = new_code_cell(f"x{i} = {i}") if i % 2 == 0 else new_markdown_cell(f"# {i}")
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    return nb


LAYOUTS = {
    "after the parameters cell": ((), ("parameters",), (), ()),
    "first of two parameters cells": ((), ("parameters",), ("parameters",), ()),
    "replaces an injected cell": (("parameters",), ("injected-parameters",), (), ()),
    "no parameters cell: top": ((), (), ()),
}


def _shape(nb):
    return [(c.cell_type, c.source, c.metadata.get("tags")) for c in nb.cells]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_injection_matches_papermill(layout, caplog, tmp_path):
    path = tmp_path / "in.ipynb"
    nbformat.write(_notebook(*LAYOUTS[layout]), path)
    loaded = load_notebook_node(str(path))  # papermill's loader (adds empty tags, metadata)
    caplog.set_level(logging.ERROR, logger="papermill")
    theirs = parameterize_notebook(copy.deepcopy(loaded), dict(PARAMS))
    ours = inject_parameters(copy.deepcopy(loaded), dict(PARAMS))
    assert _shape(ours) == _shape(theirs)
    assert [c.metadata for c in ours.cells] == [c.metadata for c in theirs.cells]
    assert ours.metadata == theirs.metadata
    raw = inject_parameters(nbformat.read(path, as_version=4), dict(PARAMS))
    assert [c.source for c in raw.cells] == [c.source for c in theirs.cells]
    assert raw.metadata["papermill"]["parameters"] == theirs.metadata["papermill"]["parameters"]
    injected = [c for c in ours.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    nbformat.validate(ours)


def test_injected_source_is_valid_python_with_the_values():
    safe = {k: v for k, v in PARAMS.items() if k not in ("nan", "inf")}
    scope: dict = {}
    exec(parameters_source(safe), scope)
    assert {k: scope[k] for k in safe} == safe


def test_bad_parameter_name_is_rejected():
    with pytest.raises(ValueError, match="not a Python identifier"):
        parameters_source({"not valid": 1})


def test_grid_is_every_combination_with_scalars_fixed():
    assert expand_grid({"m": ["a", "b"], "n": [1, 2], "t": 0.5}) == [
        {"m": "a", "n": 1, "t": 0.5}, {"m": "a", "n": 2, "t": 0.5},
        {"m": "b", "n": 1, "t": 0.5}, {"m": "b", "n": 2, "t": 0.5}]


def test_items_from_frames_records_and_files(tmp_path):
    frame = pd.DataFrame({"x": [1, 2], "y": ["a", None]}, index=["r1", "r2"])
    assert as_items(frame) == [("r1", {"x": 1, "y": "a"}), ("r2", {"x": 2, "y": None})]
    assert as_items([{"a": 1}, {"a": 2}]) == [("0", {"a": 1}), ("1", {"a": 2})]
    (tmp_path / "g.yaml").write_text("m: [a, b]\nn: 1\n")
    assert [p for _, p in as_items(tmp_path / "g.yaml")] == [{"m": "a", "n": 1},
                                                             {"m": "b", "n": 1}]
    frame.to_csv(tmp_path / "rows.csv", index=False)
    assert [p for _, p in as_items(tmp_path / "rows.csv")] == [{"x": 1, "y": "a"}, {"x": 2}]


def test_bad_items_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="duplicate labels"):
        as_items(pd.DataFrame({"x": [1, 2]}, index=[0, 0]))
    with pytest.raises(TypeError, match="item 1 is a int"):
        as_items([{"a": 1}, 5])
    with pytest.raises(FileNotFoundError, match="no parameters file"):
        as_items(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("just text")
    with pytest.raises(ValueError, match="must hold a grid"):
        as_items(tmp_path / "bad.yaml")


@pytest.mark.parametrize(("source", "names"), [
    ("a = 1\nb: int = 2  # help\nc, d = 3, 4\nif a:\n    e = 5", {"a", "b", "c", "d"}),
    ("%matplotlib inline\nmodel = 'x'\nn = 3 # count", {"model", "n"}),  # not Python: lines
    ("x == 1\n", set()),
])
def test_parameter_names_are_what_the_parameters_cell_assigns(source, names):
    from fm_lab.batch.params import parameter_names

    assert parameter_names(source) == names


def test_prepare_warns_as_papermill_and_injects_nothing_without_parameters(caplog):
    from papermill.execute import prepare_notebook_metadata, remove_error_markers

    from fm_lab.batch.markers import ERROR_MARKER_TAG
    from fm_lab.batch.params import NO_PARAMETERS_CELL, prepare_notebook

    nb = _notebook(["parameters"], [], [])
    stale = new_markdown_cell("old banner")
    stale.metadata["tags"] = [ERROR_MARKER_TAG]
    nb.cells.insert(0, stale)
    ours, warned = prepare_notebook(copy.deepcopy(nb), {"x0": 1, "zz": 2}, "in", "out")
    assert warned == ["Passed unknown parameter: zz"]
    theirs = parameterize_notebook(_loaded(nb), {"x0": 1, "zz": 2})
    theirs = remove_error_markers(prepare_notebook_metadata(theirs, "in", "out"))
    assert [c.source for c in ours.cells] == [c.source for c in theirs.cells]
    assert [c.metadata for c in ours.cells] == [c.metadata for c in theirs.cells]
    assert sorted(ours.metadata.papermill) == sorted(theirs.metadata.papermill)
    bare, warned = prepare_notebook(copy.deepcopy(nb), {}, "in", "out")
    assert warned == [] and len(bare.cells) == len(nb.cells) - 1  # the stale banner only
    _, warned = prepare_notebook(_notebook([], []), {"a": 1}, "in", "out")
    assert warned == ["Passed unknown parameter: a", NO_PARAMETERS_CELL]


def _loaded(nb):
    """``nb`` as papermill loads it (its default metadata and tags)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "nb.ipynb"
        nbformat.write(nb, path)
        return load_notebook_node(str(path))


def test_cli_parameters_read_as_papermill_reads_them(tmp_path):
    import argparse

    from fm_lab.batch.cli import cli_parameters

    (tmp_path / "p.yaml").write_text("a: 1\nb: from file\nday: 2026-01-02\n")
    args = argparse.Namespace(
        file=[str(tmp_path / "p.yaml")], yaml=["b: from yaml\nc: [1, 2]"],
        parameter=[["t", "True"], ["f", "False"], ["n", "None"], ["i", "7"], ["x", "2.5"],
                   ["s", "hello"], ["j", "[1, 2]"], ["a", "3"]],
        raw=[["r", "True"], ["i", "7"]])
    assert cli_parameters(args) == {
        "a": 3, "b": "from yaml", "day": "2026-01-02", "c": [1, 2], "t": True,
        "f": False, "n": None, "i": "7", "x": 2.5, "s": "hello", "j": "[1, 2]", "r": "True"}


def test_the_notebook_commands_take_papermills_arguments():
    from fm_lab.cli import build_parser

    one = build_parser().parse_args(["notebook", "in.ipynb", "out.ipynb", "-p", "msg", "True",
                                     "-r", "code", "007", "-y", "a: 1", "-f", "p.yaml",
                                     "--cwd", "data", "-k", "python3", "--batch-id", "b1"])
    assert (one.notebook, one.output, one.parameter, one.raw, one.yaml, one.file, one.cwd,
            one.kernel, one.batch_id) == ("in.ipynb", "out.ipynb", [["msg", "True"]],
                                          [["code", "007"]], ["a: 1"], ["p.yaml"], "data",
                                          "python3", "b1")
    batch = build_parser().parse_args(["batch", "notebook", "in.ipynb", "-p", "msg", "Hello"])
    assert batch.grid is None and batch.csv is None  # one item: the parameters given
