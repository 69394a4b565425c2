"""Parameters: papermill-compatible injection into a notebook, and grids/tables of items."""

from __future__ import annotations

import ast
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import nbformat

INJECTED_TAG = "injected-parameters"
PARAMETERS_TAG = "parameters"
NO_PARAMETERS_CELL = "Input notebook does not contain a cell with tag 'parameters'"
_ASSIGNED = re.compile(r"^(\w+)\s*(?::[^=]*)?=(?!=)")  # papermill's reading of a parameters line


def python_literal(value: Any) -> str:
    """``value`` as Python source, the way papermill's Python translator writes it."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return str(value)
        if math.isnan(value):
            return "float('nan')"
        return "float('-inf')" if value < 0 else "float('inf')"
    if isinstance(value, dict):
        body = ", ".join(f"{_quoted(k)}: {python_literal(v)}" for k, v in value.items())
        return "{" + body + "}"
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    return _quoted(value)


def _quoted(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("unicode_escape").decode("utf-8").replace('"', r"\"")
    return f'"{value}"'


def parameters_source(parameters: Mapping[str, Any], comment: str = "Parameters") -> str:
    """The source of the injected cell."""
    lines = [f"# {comment}".strip()]
    for name, value in parameters.items():
        if not str(name).isidentifier():
            raise ValueError(f"notebook parameter name {name!r} is not a Python identifier")
        lines.append(f"{name} = {python_literal(value)}")
    return "\n".join(lines) + "\n"


def _first_tagged(nb: nbformat.NotebookNode, tag: str) -> int:
    for index, cell in enumerate(nb.cells):
        if tag in cell.get("metadata", {}).get("tags", []):
            return index
    return -1


def inject_parameters(nb: nbformat.NotebookNode, parameters: Mapping[str, Any]
                      ) -> nbformat.NotebookNode:
    """Insert the parameters as papermill does: a cell tagged ``injected-parameters`` replacing
    an earlier injected cell, else after the first ``parameters`` cell, else at the top; the
    parameters are recorded in ``nb.metadata.papermill.parameters``."""
    import nbformat

    nb = nbformat.v4.upgrade(nb)  # type: ignore[no-untyped-call]
    cell = nbformat.v4.new_code_cell(  # type: ignore[no-untyped-call]
        source=parameters_source(parameters))
    cell.metadata["tags"] = [INJECTED_TAG]
    injected = _first_tagged(nb, INJECTED_TAG)
    tagged = _first_tagged(nb, PARAMETERS_TAG)
    if injected >= 0:
        before, after = nb.cells[:injected], nb.cells[injected + 1:]
    elif tagged >= 0:
        before, after = nb.cells[:tagged + 1], nb.cells[tagged + 1:]
    else:
        before, after = [], nb.cells
    nb.cells = [*before, cell, *after]
    nb.metadata.setdefault("papermill", {})["parameters"] = dict(parameters)
    return nb


def parameter_names(source: str) -> set[str]:
    """The names a ``parameters`` cell assigns (a cell that is not Python, e.g. one with a
    magic, is read line by line, as papermill reads it)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {m.group(1) for line in source.splitlines() if (m := _ASSIGNED.match(line))}
    names: set[str] = set()
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        for target in targets:
            elements = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
            names.update(e.id for e in elements if isinstance(e, ast.Name))
    return names


def prepare_notebook(nb: nbformat.NotebookNode, parameters: Mapping[str, Any],
                     input_path: str, output_path: str
                     ) -> tuple[nbformat.NotebookNode, list[str]]:
    """What papermill does before executing: default ``metadata.papermill`` (parameters,
    ``default_parameters``, ``environment_variables``, ``version``) and per-cell ``tags``,
    the parameters injected (only when there are some), the input and output paths recorded
    and stale error markers removed. Returns the notebook and papermill's warnings (a
    parameter the ``parameters`` cell does not assign, no ``parameters`` cell)."""
    import nbformat

    from fm_lab.batch.markers import remove_error_markers

    nb = nbformat.v4.upgrade(nb)  # type: ignore[no-untyped-call]
    nb.metadata.setdefault("papermill", {"default_parameters": {}, "parameters": {},
                                         "environment_variables": {}, "version": _version()})
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", {})
    warnings: list[str] = []
    if parameters:
        tagged = _first_tagged(nb, PARAMETERS_TAG)
        known = parameter_names(nb.cells[tagged].source) if tagged >= 0 else set()
        warnings += [f"Passed unknown parameter: {name}" for name in parameters
                     if name not in known]
        if tagged < 0:
            warnings.append(NO_PARAMETERS_CELL)
        nb = inject_parameters(nb, parameters)
    nb.metadata.papermill.update(input_path=input_path, output_path=output_path)
    return remove_error_markers(nb), warnings


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"fm_lab {version('fm_lab')}"
    except PackageNotFoundError:
        return "fm_lab"


def expand_grid(grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of a grid: ``{"model": ["a", "b"], "n": [1, 2]}`` gives 4 items;
    scalars are held fixed."""
    names = list(grid)
    axes = [v if isinstance(v, list | tuple) else [v] for v in grid.values()]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]


def as_items(source: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(key, parameters)`` per item from a DataFrame (key: the index label), a list of dicts
    (key: the position), a grid dict (every combination) or a YAML/JSON/CSV file of those."""
    import pandas as pd

    if isinstance(source, str | Path):
        source = read_items_file(Path(source))
    if isinstance(source, pd.DataFrame):
        if not source.index.is_unique:
            raise ValueError("the DataFrame's index has duplicate labels; batch items are keyed "
                             "by index label (call .reset_index(drop=True))")
        records = source.to_dict(orient="records")
        return [(str(label), _plain(row)) for label, row in zip(source.index, records,
                                                                   strict=True)]
    if isinstance(source, Mapping):
        return [(str(i), item) for i, item in enumerate(expand_grid(source))]
    if isinstance(source, Iterable):
        items = list(source)
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise TypeError(f"batch item {i} is a {type(item).__name__}, not a dict")
        return [(str(i), dict(item)) for i, item in enumerate(items)]
    raise TypeError(f"cannot make batch items of a {type(source).__name__}: give a DataFrame, a "
                    "list of dicts, a grid dict or a .yaml/.json/.csv file")


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A DataFrame row with numpy scalars turned into Python values (NaN into None)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "item") and not isinstance(value, list | dict | str):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[str(key)] = value
    return out


def read_items_file(path: Path) -> Any:
    """A grid or item list from YAML/JSON, or rows from CSV."""
    import pandas as pd

    from fm_lab.spec.errors import DocumentError
    from fm_lab.spec.io import load_json, read_document
    from fm_lab.spec.yaml_io import safe_load

    if not path.exists():
        raise FileNotFoundError(f"no parameters file {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":  # an empty cell is a value not given (defaults apply), not None
        rows = pd.read_csv(path).to_dict(orient="records")
        return [{k: v for k, v in _plain(row).items() if v is not None} for row in rows]
    text = read_document(path, "parameters file")
    try:
        loaded = load_json(text) if suffix == ".json" else safe_load(text)
    except DocumentError as exc:
        raise exc.at(str(path)) from None
    if not isinstance(loaded, dict | list):
        raise ValueError(f"{path} must hold a grid (a mapping) or a list of parameter mappings")
    return loaded
