"""How an executed notebook ended, read the way papermill 2.7 reads it, and papermill's error
markers: a banner at the top linking to an anchor just above the failing cell.

The rule (papermill's ``raise_for_execution_errors``): the first cell with an ``error``
output fails the notebook, except ``SystemExit`` with no value or ``0`` (``sys.exit()``,
``sys.exit(0)``, ``raise SystemExit``), which ends it successfully with the later cells not
run; a cell whose ``metadata.papermill.exception`` is set but that has no error output (a line
magic's ``UsageError``) fails it too. A timeout, a dead kernel or a kernel that never started
fails it without markers (papermill raises before it would add them)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import nbformat

ERROR_MARKER_TAG = "papermill-error-cell-tag"
_STYLE = ('style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; '
          'font-size:2em;"')
ERROR_MESSAGE_TEMPLATE = (f"<span {_STYLE}>An Exception was encountered at "
                          "'<a href=\"#papermill-error-cell\">In [%s]</a>'.</span>")
ERROR_ANCHOR_MSG = (f'<span id="papermill-error-cell" {_STYLE}>Execution using papermill '
                    "encountered an exception here and stopped:</span>")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)


def remove_error_markers(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without the error banner and anchor of an earlier run."""
    nb.cells = [c for c in nb.cells if ERROR_MARKER_TAG not in c.metadata.get("tags", [])]
    return nb


def add_error_markers(nb: nbformat.NotebookNode, index: int) -> int:
    """Insert papermill's banner (top) and anchor (above cell ``index``); returns the failing
    cell's new index."""
    import nbformat

    count = nb.cells[index].get("execution_count")
    banner = nbformat.v4.new_markdown_cell(  # type: ignore[no-untyped-call]
        ERROR_MESSAGE_TEMPLATE % str(count))
    anchor = nbformat.v4.new_markdown_cell(ERROR_ANCHOR_MSG)  # type: ignore[no-untyped-call]
    for cell in (banner, anchor):
        cell.metadata["tags"] = [ERROR_MARKER_TAG]
    nb.cells.insert(index, anchor)
    nb.cells.insert(0, banner)
    return index + 2


def outcome(nb: nbformat.NotebookNode, raised: BaseException | None = None,
            cell_errors: Mapping[int, BaseException] | None = None,
            running: int | None = None) -> dict[str, Any]:
    """``status`` (``succeeded``/``failed``), ``error`` (type, message, ename, evalue,
    traceback, cell) and ``error_cell`` of an executed notebook, and ``markers``: whether
    papermill would add its error markers. ``raised``: what stopped the execution itself (a
    timeout, a dead kernel) while cell ``running`` ran; ``cell_errors``: the
    ``CellExecutionError`` of a failed cell, for an error that left no error output."""
    if raised is not None:
        lines = plain(str(raised)).strip().splitlines()
        error = {"kind": "notebook", "type": type(raised).__name__,
                 "message": lines[0] if lines else type(raised).__name__, "cell": running}
        return {"status": "failed", "error": error, "error_cell": running, "markers": False}
    for index, cell in enumerate(nb.cells):
        exited = False
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            if out.get("ename") == "SystemExit" and out.get("evalue") in ("", "0"):
                exited = True
                continue
            return _failed(index, str(out.get("ename")), str(out.get("evalue")),
                           "\n".join(out.get("traceback", [])))
        failed = cell.get("metadata", {}).get("papermill", {}).get("exception") is True
        if failed and not exited:
            exc = (cell_errors or {}).get(index)
            return _failed(index, str(getattr(exc, "ename", "CellExecutionError")),
                           str(getattr(exc, "evalue", "")), str(getattr(exc, "traceback", "")))
    return {"status": "succeeded", "error": None, "error_cell": None, "markers": False}


def _failed(index: int, ename: str, evalue: str, traceback: str) -> dict[str, Any]:
    error = {"kind": "notebook", "type": "CellExecutionError",
             "message": f"{ename}: {evalue}" if evalue else ename, "ename": ename,
             "evalue": evalue, "traceback": plain(traceback), "cell": index}
    return {"status": "failed", "error": error, "error_cell": index, "markers": True}


def mark_failure(nb: nbformat.NotebookNode, result: dict[str, Any], *, insert: bool = True
                 ) -> dict[str, Any]:
    """``result`` (of :func:`outcome`) with the failing cell's index in the notebook as written:
    after papermill's markers, which are inserted unless ``insert`` is false (papermill inserts
    them itself)."""
    if not result["markers"]:
        return result
    index = result["error_cell"]
    moved = add_error_markers(nb, index) if insert else index + 2
    result["error"]["cell"] = result["error_cell"] = moved
    return result
