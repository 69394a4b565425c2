"""fm_lab as a papermill engine: ``papermill --engine fm_lab in.ipynb out.ipynb`` (or
``papermill.execute_notebook(..., engine_name="fm_lab")``) executes exactly as papermill's own
nbclient engine does and records the execution in the fm_lab store as a one-item notebook
batch: its status, error and output path, its ``batch_item`` span, and the runs its kernel
starts (with their spans and cost) in the item's trace.

Registered under papermill's ``papermill.engine`` entry point group (pyproject.toml). Engine
keyword arguments of ``papermill.execute_notebook``: ``batch_id`` (record it as, or resume,
that batch) and ``store`` (default: fm_lab's default store, ``$FM_LAB_STORE``)."""

from __future__ import annotations

from typing import Any

from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

from fm_lab.batch.markers import mark_failure, outcome
from fm_lab.batch.notebooks import begin_item, end_item, kernel_env, open_item


class _Manager(NotebookExecutionManager):  # type: ignore[misc]
    """Papermill's bookkeeping, keeping each failed cell's exception (for an error that left
    no error output, e.g. a line magic's ``UsageError``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.errors: dict[int, BaseException] = {}

    def cell_exception(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        super().cell_exception(cell, cell_index=cell_index, **kwargs)
        if cell_index is not None and isinstance(kwargs.get("exception"), BaseException):
            self.errors[cell_index] = kwargs["exception"]


class FmLabEngine(NBClientEngine):  # type: ignore[misc]
    """Papermill's nbclient engine, recorded in the fm_lab store."""

    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None,
                         progress_bar: bool = True, log_output: bool = False,
                         autosave_cell_every: int = 30, **kwargs: Any) -> Any:
        """Papermill's ``Engine.execute_notebook``, inside a batch item."""
        import time

        meta = nb.metadata.papermill
        notebook = _absolute(kwargs.get("input_path") or meta.get("input_path"))
        store, item = open_item(notebook, meta.get("parameters") or {},
                                batch_id=kwargs.pop("batch_id", None),
                                store=kwargs.pop("store", None))
        begin_item(store, item, _absolute(meta.get("output_path") or output_path), notebook)
        logger.info(f"Recorded in the fm_lab store {store.path} as batch {item.batch_id}")
        manager = _Manager(nb, output_path=output_path, progress_bar=progress_bar,
                           log_output=log_output, autosave_cell_every=autosave_cell_every)
        started, raised = time.time(), None
        manager.notebook_start()
        try:
            cls.execute_managed_notebook(manager, kernel_name, log_output=log_output,
                                         fm_lab_env=kernel_env(store, item), **kwargs)
        except BaseException as exc:
            raised = exc
            raise
        finally:
            manager.cleanup_pbar()
            manager.notebook_complete()
            result = mark_failure(manager.nb, outcome(manager.nb, raised, manager.errors,
                                                      _last_started(manager.nb)), insert=False)
            end_item(store, item, {**result, "started": started, "ended": time.time()},
                     notebook)
        return manager.nb

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                 stdout_file: Any = None, stderr_file: Any = None,
                                 start_timeout: int = 60, execution_timeout: int | None = None,
                                 fm_lab_env: dict[str, str] | None = None,
                                 **kwargs: Any) -> Any:
        """``NBClientEngine.execute_managed_notebook`` with the item's variables given to the
        kernel."""
        import os

        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs, timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout, kernel_name=kernel_name, log=logger,
            log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file)
        env = {**os.environ, **(fm_lab_env or {})}
        return PapermillNotebookClient(nb_man, **final_kwargs).execute(env=env)


def _absolute(path: str | None) -> str:
    """A path as the batch records it (absolute; ``-``: stdin or stdout)."""
    import os

    return os.path.abspath(path) if path and path != "-" else "-"


def _last_started(nb: Any) -> int | None:
    """The last cell that started (the one running when a timeout or dead kernel struck)."""
    started = [i for i, c in enumerate(nb.cells)
               if c.metadata.get("papermill", {}).get("start_time") and c.cell_type == "code"]
    return started[-1] if started else None
