"""Executing one parameterised notebook with nbclient (in this process or on a Dask worker)."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fm_lab.batch.params import inject_parameters
from fm_lab.sync import run_sync

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
DEFAULT_KERNEL = "python3"


def _nb_modules() -> tuple[Any, Any]:
    try:
        import nbclient
        import nbformat
    except ImportError:
        raise ImportError("running notebooks needs nbclient, nbformat and ipykernel: "
                          "pip install 'fm_lab[batch]'") from None
    return nbclient, nbformat


def read_notebook(path: str | Path) -> Any:
    """The notebook at ``path`` (a clear error when it is missing or not a notebook)."""
    _, nbformat = _nb_modules()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no notebook at {path}")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable Jupyter notebook: {exc}") from None


def execute_notebook(source: str | Path, output: str | Path, parameters: Mapping[str, Any],
                     *, env: Mapping[str, str] | None = None, kernel_name: str | None = None,
                     timeout: float | None = None, cwd: str | Path | None = None,
                     extra_metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Inject ``parameters``, execute every cell, write the executed notebook to ``output``
    (also when a cell fails) and return status, error, failing cell index (in the output
    notebook) and timings. The kernel inherits this process's environment plus ``env``
    (progress bars off)."""
    nbclient, nbformat = _nb_modules()
    nb = inject_parameters(read_notebook(source), parameters)
    meta = nb.metadata.setdefault("papermill", {})
    meta.update(input_path=str(source), output_path=str(output))
    if extra_metadata:
        nb.metadata["fm_lab"] = dict(extra_metadata)
    name = kernel_name or nb.metadata.get("kernelspec", {}).get("name") or DEFAULT_KERNEL
    client = nbclient.NotebookClient(
        nb, timeout=None if timeout is None else max(1, math.ceil(timeout)), kernel_name=name,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # not its TCP warning per item
        resources={"metadata": {"path": str(cwd or Path(source).resolve().parent)}})
    started = time.time()
    error: dict[str, Any] | None = None
    try:
        # no progress bars in headless kernels: they would only clutter the saved outputs
        kernel_env = {**os.environ, "FM_LAB_PROGRESS": "0", **(env or {})}
        run_sync(client.async_execute(env=kernel_env))  # closes its loop
    except Exception as exc:  # a cell raised, timed out, or the kernel died or never started
        lines = _ANSI.sub("", str(exc)).strip().splitlines()
        error = {"kind": "notebook", "type": type(exc).__name__,
                 "message": lines[0] if lines else type(exc).__name__}
    ended = time.time()
    cell = None
    if error is not None:
        cell = _failing_cell(nb)
        out = _error_output(nb.cells[cell]) if cell is not None else {}
        if out:
            error.update(ename=out.get("ename"), evalue=out.get("evalue"),
                         traceback=_ANSI.sub("", "\n".join(out.get("traceback", []))))
            if error["type"] == "CellExecutionError":  # else keep "timed out", "kernel died"
                error["message"] = f"{out.get('ename')}: {out.get('evalue')}"
        error["cell"] = cell
    meta.update(start_time=_iso(started), end_time=_iso(ended), duration=ended - started,
                exception=True if error else None)  # papermill's values
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(output))
    return {"status": "failed" if error else "succeeded", "error": error, "error_cell": cell,
            "started": started, "ended": ended, "output_path": str(output)}


def _error_output(cell: Any) -> dict[str, Any]:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return dict(out)
    return {}


def _failing_cell(nb: Any) -> int | None:
    """The cell with an error output, else the last cell that started (a timeout or a dead
    kernel leaves no error output)."""
    started = None
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        if _error_output(cell):
            return index
        if cell.get("execution_count") is not None:
            started = index
    return started


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).isoformat()
