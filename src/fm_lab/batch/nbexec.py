"""Executing one parameterised notebook the way papermill 2.7 does, with nbclient (in this
process or on a Dask worker): the same injected cell and warnings, per-cell and notebook
``metadata.papermill``, the kernel in the caller's working directory (or ``cwd``), the output
saved as each cell starts and ends (and every 30 s while one runs), ``sys.exit(0)`` a success,
and papermill's error markers on a failure (:mod:`fm_lab.batch.markers`)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fm_lab.batch.markers import mark_failure, outcome
from fm_lab.batch.params import prepare_notebook
from fm_lab.sync import run_sync

DEFAULT_KERNEL = "python3"
AUTOSAVE_EVERY = 30.0  # seconds between saves while one cell runs (papermill's default)
LOG = logging.getLogger("fm_lab.batch")


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
                     extra_metadata: Mapping[str, Any] | None = None,
                     autosave_every: float = AUTOSAVE_EVERY) -> dict[str, Any]:
    """Inject ``parameters`` (papermill's warnings go to the ``fm_lab.batch`` logger), execute
    the cells in ``cwd`` (default: this process's working directory) until one fails, write
    the executed notebook to ``output`` as it goes and at the end, and return ``status``,
    ``error``, ``error_cell`` (its index in the written notebook), ``warnings``, timings and
    the output path. The kernel inherits this process's environment plus ``env`` (progress
    bars off)."""
    nb, warnings = prepare_notebook(read_notebook(source), parameters, str(source), str(output))
    for message in warnings:
        LOG.warning(message)
    if extra_metadata:
        nb.metadata["fm_lab"] = dict(extra_metadata)
    name = kernel_name or nb.metadata.get("kernelspec", {}).get("name") or DEFAULT_KERNEL
    cells = CellRecorder(nb, Path(output), autosave_every)
    client = _client_class()(
        nb, timeout=None if timeout is None else max(1, math.ceil(timeout)), kernel_name=name,
        startup_timeout=60, extra_arguments=["--IPKernelApp.log_level=ERROR"])
    client.recorder = cells
    # no progress bars in headless kernels: they would only clutter the saved outputs
    kernel_env = {**os.environ, "FM_LAB_PROGRESS": "0", **(env or {})}
    workdir = str(Path(cwd).resolve()) if cwd is not None else os.getcwd()
    started = time.time()
    cells.notebook_start()
    raised = None
    try:
        run_sync(_execute(client, cells, env=kernel_env, cwd=workdir))  # closes its loop
    except Exception as exc:  # a timeout, a dead kernel, a kernel that never started
        raised = exc
    finally:
        cells.notebook_complete()
    ended = time.time()
    result = mark_failure(nb, outcome(nb, raised, cells.errors, cells.running))
    cells.save()
    return {"status": result["status"], "error": result["error"],
            "error_cell": result["error_cell"], "warnings": warnings, "started": started,
            "ended": ended, "output_path": str(output)}


async def _execute(client: Any, cells: CellRecorder, **kernel_options: Any) -> None:
    """Papermill's cell loop: every cell in order, stopping at the first that raises."""
    from jupyter_core.utils import ensure_async
    from nbclient.exceptions import CellExecutionError

    client.reset_execution_trackers()
    async with client.async_setup_kernel(**kernel_options):
        for index, cell in enumerate(client.nb.cells):
            cells.cell_start(index, cell)
            try:
                await client.async_execute_cell(
                    cell, index, execution_count=client.code_cells_executed + 1)
            except CellExecutionError as exc:
                cells.cell_failed(index, cell, exc)
                break
            except BaseException:  # timed out, kernel died: the cell did not finish
                cells.cell_failed(index, cell, None)
                raise
            finally:
                cells.cell_complete(cell)
        info = await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
        if info is not None and "language_info" in info["content"]:
            client.nb.metadata["language_info"] = info["content"]["language_info"]
        client.set_widgets_metadata()


@functools.cache
def _client_class() -> type[Any]:
    """nbclient's client, autosaving while a long cell streams output (as papermill's)."""
    nbclient, _ = _nb_modules()
    base: type[Any] = nbclient.NotebookClient

    class AutosavingClient(base):  # type: ignore[misc]
        recorder: CellRecorder | None = None

        def process_message(self, *args: Any, **kwargs: Any) -> Any:
            output = super().process_message(*args, **kwargs)
            if self.recorder is not None:
                self.recorder.autosave()
            return output

    return AutosavingClient


class CellRecorder:
    """Papermill's execution bookkeeping: ``metadata.papermill`` of the notebook (start,
    end, duration, exception) and of each cell (also status: pending, running, completed,
    failed), and saves of the notebook as cells start and end."""

    def __init__(self, nb: Any, output: Path, autosave_every: float) -> None:
        self.nb, self.output, self.every = nb, output, autosave_every
        self.errors: dict[int, BaseException] = {}
        self.running: int | None = None
        self.last_save = time.monotonic()
        self.start_time = _now()

    def notebook_start(self) -> None:
        """Clear outputs, counts and cell metadata; save."""
        self.start_time = _now()
        self.nb.metadata.papermill.update(start_time=self.start_time.isoformat(),
                                          end_time=None, duration=None, exception=None)
        for cell in self.nb.cells:
            if cell.get("cell_type") == "code":
                cell.execution_count = None
                cell.outputs = []
            cell.metadata.papermill = {"exception": None, "start_time": None,
                                       "end_time": None, "duration": None,
                                       "status": "pending"}
        self.save()

    def cell_start(self, index: int, cell: Any) -> None:
        self.running = index
        cell.metadata.papermill.update(start_time=_now().isoformat(), status="running",
                                       exception=False)
        self.save()

    def cell_failed(self, index: int, cell: Any, exc: BaseException | None) -> None:
        cell.metadata.papermill.update(exception=True, status="failed")
        self.nb.metadata.papermill["exception"] = True
        if exc is not None:
            self.errors[index] = exc

    def cell_complete(self, cell: Any) -> None:
        meta = cell.metadata.papermill
        end = _now()
        meta["end_time"] = end.isoformat()
        if meta.get("start_time"):
            start = dt.datetime.fromisoformat(meta["start_time"])
            meta["duration"] = (end - start).total_seconds()
        if meta["status"] != "failed":
            meta["status"] = "completed"
        self.save()

    def notebook_complete(self) -> None:
        """End time and duration; cells never reached before a failure stay pending."""
        end = _now()
        self.nb.metadata.papermill.update(
            end_time=end.isoformat(), duration=(end - self.start_time).total_seconds())
        for cell in self.nb.cells:
            if cell.metadata.papermill["status"] == "failed":
                break
            if cell.metadata.papermill["status"] == "pending":
                cell.metadata.papermill["status"] = "completed"

    def autosave(self) -> None:
        """Save if the last save is ``every`` seconds old (0: never)."""
        if self.every and time.monotonic() - self.last_save >= self.every:
            self.save()

    def save(self) -> None:
        """Write the notebook whole (aside, then renamed over the output)."""
        _, nbformat = _nb_modules()
        self.output.parent.mkdir(parents=True, exist_ok=True)
        aside = self.output.with_name(f".{self.output.name}.{os.getpid()}.tmp")
        aside.write_text(nbformat.writes(self.nb), encoding="utf-8")
        os.replace(aside, self.output)
        self.last_save = time.monotonic()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
