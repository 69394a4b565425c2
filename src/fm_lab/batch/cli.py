"""``fm-lab batch``: notebook and workflow batches from the command line, with a progress bar
and a summary table; ``fm-lab batch status BATCH_ID``; ``fm-lab notebook IN OUT``: one notebook
with papermill's arguments."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.security.policy import MODES, POLICY_HELP

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.batch.records import Item
    from fm_lab.store.base import RunStore

_SUMMARY = ["item_key", "status", "duration_ms", "input_tokens", "output_tokens", "cost_usd"]


def add_parser(sub: Any) -> None:
    """Add the ``batch`` command group to ``fm-lab``'s subparsers."""
    batch = sub.add_parser("batch", help="run a notebook or workflow over many inputs")
    group = batch.add_subparsers(dest="batch_command", required=True, metavar="BATCH_COMMAND")

    nb = group.add_parser("notebook", help="run a notebook once per parameter set")
    nb.add_argument("notebook", help=".ipynb with a cell tagged 'parameters'")
    _items_args(nb, grid=True)
    _parameter_args(nb, "a parameter for every item")
    nb.add_argument("--output-dir", help="where executed notebooks go")
    nb.add_argument("-k", "--kernel", help="kernel name (default: the notebook's)")
    nb.add_argument("--timeout", "--execution-timeout", type=float, help="seconds per cell")
    nb.add_argument("--cwd", help="the kernels' working directory (default: this one)")

    wf = group.add_parser("workflow", help="run a workflow once per row")
    wf.add_argument("file", help="workflow .yaml/.yml/.json")
    _items_args(wf, grid=False)
    wf.add_argument("--on-error", choices=["collect", "raise"], default="collect")
    wf.add_argument("--policy", choices=MODES, help=POLICY_HELP)

    st = group.add_parser("status", help="the items of a batch")
    st.add_argument("batch_id")
    st.add_argument("--json", action="store_true")


def add_notebook_parser(sub: Any) -> None:
    """Add ``fm-lab notebook IN OUT``: papermill's command line, recorded in the store."""
    nb = sub.add_parser("notebook", help="run one notebook as papermill does, recorded in the "
                        "store (exit 1 when it fails)")
    nb.add_argument("notebook", metavar="IN", help="the notebook to run")
    nb.add_argument("output", metavar="OUT", help="where the executed notebook is written")
    _parameter_args(nb, "a parameter")
    nb.add_argument("-k", "--kernel", help="kernel name (default: the notebook's)")
    nb.add_argument("--cwd", help="the kernel's working directory (default: this one)")
    nb.add_argument("--execution-timeout", type=float, metavar="S", help="seconds per cell "
                    "(default: none)")
    nb.add_argument("--batch-id", help="record the run as the one item of this batch")
    nb.add_argument("--json", action="store_true", help="print the item as JSON")


def _parameter_args(parser: argparse.ArgumentParser, what: str) -> None:
    """Papermill's parameter options: files, then YAML, then -p, then -r."""
    parser.add_argument("-p", "--parameters", dest="parameter", nargs=2, action="append",
                        default=[], metavar=("NAME", "VALUE"), help=f"{what}: True, False, "
                        "None, an int or a float as such, else a string; repeatable")
    parser.add_argument("-r", "--parameters-raw", dest="raw", nargs=2, action="append",
                        default=[], metavar=("NAME", "VALUE"), help=f"{what}, always a string")
    parser.add_argument("-y", "--parameters-yaml", dest="yaml", action="append", default=[],
                        metavar="YAML", help="parameters as a YAML mapping")
    parser.add_argument("-f", "--parameters-file", dest="file", action="append", default=[],
                        metavar="FILE", help="parameters from a YAML or JSON file")


def cli_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters of ``-f``, ``-y``, ``-p`` and ``-r``, later ones winning (papermill's
    order)."""
    from fm_lab.spec.io import read_document
    from fm_lab.spec.yaml_io import safe_load

    found: dict[str, Any] = {}
    documents = [(read_document(Path(f), "parameters file"), f) for f in args.file]
    for text, origin in [*documents, *[(y, "-y") for y in args.yaml]]:
        loaded = safe_load(text)
        if not isinstance(loaded, dict | None):
            raise ValueError(f"parameters from {origin} must be a mapping, not a "
                             f"{type(loaded).__name__}")
        found.update(_no_dates(loaded or {}))
    found.update({name: _value(raw) for name, raw in args.parameter})
    found.update(dict(args.raw))
    return found


def _no_dates(value: Any) -> Any:
    """YAML dates as the strings they were written as (papermill's loader reads no dates)."""
    import datetime as dt

    if isinstance(value, dict):
        return {k: _no_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_dates(v) for v in value]
    return value.isoformat() if isinstance(value, dt.date) else value


def _items_args(parser: argparse.ArgumentParser, *, grid: bool) -> None:
    source = parser.add_mutually_exclusive_group(required=not grid)  # none: one item
    if grid:
        source.add_argument("--grid", help="YAML/JSON grid (every combination) or item list "
                            "(default: one item, the -p/-r/-y/-f parameters)")
    source.add_argument("--csv", help="CSV, one item per row")
    parser.add_argument("--concurrency", type=int, help="items at a time")
    parser.add_argument("--dask", metavar="ADDRESS", help="run on this Dask scheduler "
                        "('local' for a LocalCluster)")
    parser.add_argument("--batch-id", help="resume (or name) this batch")
    parser.add_argument("--json", action="store_true", help="print the items as JSON")


def run(args: argparse.Namespace, store: RunStore | None) -> int:
    """Run ``fm-lab batch ...``; returns the exit code (1 when an item failed)."""
    from fm_lab.batch import records
    from fm_lab.store.ids import validate_run_id

    command = getattr(args, "batch_command", None)
    if args.batch_id is not None:  # before any progress bar is drawn
        validate_run_id(args.batch_id, "batch id")
    if command is None:
        return _single(args, store)
    if command == "status":
        frame = records.status(args.batch_id, store=store)
        return _summary(args, args.batch_id, frame)
    batch_id = args.batch_id or records.new_batch_id()
    if command == "notebook":
        frame = _notebook(args, batch_id, store)
    else:
        frame = _workflow(args, batch_id, store)
    return _summary(args, batch_id, frame)


def _items(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    from fm_lab.batch.params import as_items

    source = getattr(args, "grid", None) or args.csv
    if source is None:
        return [dict(extra or {})]
    items = [params for _, params in as_items(Path(source))]
    return [{**params, **(extra or {})} for params in items]


def _notebook(args: argparse.Namespace, batch_id: str, store: RunStore | None) -> pd.DataFrame:
    from fm_lab.batch.notebooks import run_notebooks

    items = _items(args, cli_parameters(args))
    with _progress(len(items), args.json) as tick:
        return run_notebooks(args.notebook, items, concurrency=args.concurrency or 2,
                             batch_id=batch_id, output_dir=args.output_dir, store=store,
                             kernel_name=args.kernel, timeout=args.timeout, on_item=tick,
                             executor=_executor(args), cwd=args.cwd)


def _single(args: argparse.Namespace, store: RunStore | None) -> int:
    """``fm-lab notebook``: exit 0 when it succeeded (``sys.exit(0)`` included), 138 when its
    kernel died (as papermill), else 1."""
    from fm_lab.batch.notebooks import run_notebook

    item = run_notebook(args.notebook, cli_parameters(args), args.output,
                        batch_id=args.batch_id, store=store, kernel_name=args.kernel,
                        timeout=args.execution_timeout, cwd=args.cwd)
    error = item.error or {}
    if args.json:
        print(json.dumps({"batch_id": item.batch_id, "status": item.status,
                          "output_path": item.output_path, "duration_ms": item.duration_ms,
                          "error_cell": item.error_cell, "error": item.error,
                          "trace_id": item.trace_id}, default=str))
    else:
        print(f"{item.status}: {item.output_path} (batch {item.batch_id}, "
              f"{(item.duration_ms or 0) / 1000:.1f} s)")
        if item.error:
            print(f"cell {item.error_cell}: {error.get('message')}")
    if item.status == "succeeded":
        return 0
    return 138 if error.get("type") == "DeadKernelError" else 1


def _workflow(args: argparse.Namespace, batch_id: str, store: RunStore | None) -> pd.DataFrame:
    from fm_lab.batch.records import status
    from fm_lab.batch.sweep import map as batch_map

    items = _items(args)
    with _progress(len(items), args.json) as tick:
        batch_map(Path(args.file), items, concurrency=args.concurrency, executor=_executor(args),
                  batch_id=batch_id, on_error=args.on_error, store=store, on_item=tick,
                  policy=args.policy)
    return status(batch_id, store=store)


def _executor(args: argparse.Namespace) -> str:
    if not args.dask:
        return "local"
    return "dask" if args.dask == "local" else str(args.dask)


def _value(raw: str) -> Any:
    """A ``-p`` value as papermill reads it."""
    constants = {"True": True, "False": False, "None": None}
    if raw in constants:
        return constants[raw]
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


@contextmanager
def _progress(total: int, quiet: bool) -> Iterator[Callable[[Item], None]]:
    from tqdm import tqdm

    with tqdm(total=total, unit="item", disable=quiet, dynamic_ncols=True) as bar:
        def tick(item: Item) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{item.key}: {item.status}")

        yield tick


def _summary(args: argparse.Namespace, batch_id: str, frame: pd.DataFrame) -> int:
    failed = int((frame["status"] != "succeeded").sum())
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
        return 1 if failed else 0
    shown = frame[_SUMMARY].copy()
    shown["duration_ms"] = shown["duration_ms"].round(1)
    if "error" in frame:
        shown["error"] = [(e or {}).get("message", "") if isinstance(e, dict) else ""
                          for e in frame["error"]]
    print(shown.to_string(index=False))
    print(f"\nbatch {batch_id}: {len(frame) - failed} succeeded, {failed} not succeeded, "
          f"{frame['duration_ms'].sum() / 1000:.1f} s of item time, "
          f"${frame['cost_usd'].sum():.6f}")
    if failed:
        print(f"resume with --batch-id {batch_id}")
    return 1 if failed else 0
