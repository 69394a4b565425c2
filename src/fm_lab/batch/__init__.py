"""Batch runs: parameterised notebooks (papermill-style, resumable), workflow sweeps over
DataFrames (locally or on Dask), every item recorded and traced in the store.

>>> import fm_lab.batch
>>> frame = fm_lab.batch.map("flow.yaml", df, concurrency=8)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fm_lab.batch.notebooks import run_notebook, run_notebooks
    from fm_lab.batch.params import inject_parameters
    from fm_lab.batch.records import Item, status
    from fm_lab.batch.sweep import BatchItemError, map

_EXPORTS = {
    "run_notebook": "fm_lab.batch.notebooks",
    "run_notebooks": "fm_lab.batch.notebooks",
    "inject_parameters": "fm_lab.batch.params",
    "Item": "fm_lab.batch.records",
    "status": "fm_lab.batch.records",
    "map": "fm_lab.batch.sweep",
    "BatchItemError": "fm_lab.batch.sweep",
}
__all__ = ["BatchItemError", "Item", "inject_parameters", "map", "run_notebook", "run_notebooks",
           "status"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fm_lab.batch' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
