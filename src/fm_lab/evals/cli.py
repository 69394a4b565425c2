"""``fm-lab eval run FILE --min scorer=0.8``: run the experiment a Python file describes, print
its summary and its comparison with the last stored experiment of the same name, and exit 1
when a scorer's mean misses its minimum (a CI gate).

The file defines ``target`` (a function, an agent or a workflow), ``dataset`` (a stored
dataset's name, a :class:`~fm_lab.evals.Dataset`, or rows: a DataFrame, a .csv/.jsonl path,
records) and ``scorers``; optionally ``variants``, ``name`` (default: the file's name) and
``concurrency``."""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fm_lab.evals.experiment import Experiment
    from fm_lab.store.base import RunStore


def add_parser(sub: Any) -> None:
    """Add the ``eval`` command group to ``fm-lab``'s subparsers."""
    parser = sub.add_parser("eval", help="run evals: experiments over datasets, as a CI gate")
    group = parser.add_subparsers(dest="eval_command", required=True, metavar="EVAL_COMMAND")
    run = group.add_parser("run", help="run the experiment FILE describes (target, dataset, "
                           "scorers); exit 1 when a --min threshold is missed")
    run.add_argument("file", metavar="FILE", help="a Python file defining target, dataset, "
                     "scorers (and optionally variants, name, concurrency)")
    run.add_argument("--min", dest="minimums", action="append", default=[],
                     metavar="SCORER=VALUE", help="the least mean score allowed (repeatable)")
    run.add_argument("--name", help="the experiment's name (default: the file's, or its "
                     "`name`); the comparison is with the last experiment of this name")


class EvalFileError(ValueError):
    """An eval file that does not define what an experiment needs."""


def load_file(path: str) -> dict[str, Any]:
    """The names an eval file defines (it is run as a script)."""
    file = Path(path)
    if not file.is_file():
        raise EvalFileError(f"{file} does not exist")
    found = runpy.run_path(str(file), run_name="__fm_lab_eval__")
    missing = [n for n in ("target", "dataset", "scorers") if n not in found]
    if missing:
        raise EvalFileError(f"{file} defines no {', '.join(missing)} (an eval file defines "
                            "target, dataset and scorers)")
    return found


def experiment_of(args: argparse.Namespace, store: RunStore) -> Experiment:
    """Run the experiment the file describes."""
    from fm_lab.evals.data import Dataset, dataset
    from fm_lab.evals.runner import run

    found = load_file(args.file)
    name = args.name or found.get("name") or Path(args.file).stem
    data = found["dataset"]
    if isinstance(data, (str, Path)) and str(data).endswith((".csv", ".jsonl")):
        beside = Path(args.file).parent / data  # a path relative to the eval file
        data = dataset(name, beside if beside.exists() else data, store=store)
    elif not isinstance(data, (Dataset, str)):
        data = dataset(name, data, store=store)
    return run(found["target"], data, found["scorers"], variants=found.get("variants"),
               concurrency=int(found.get("concurrency", 8)), name=name, store=store)


def comparisons(current: Experiment, store: RunStore) -> list[str]:
    """The comparison of each variant with the same variant of the last experiment of the
    same name (none on the first run)."""
    from fm_lab.evals.comparison import compare
    from fm_lab.evals.experiment import previous

    if current.name is None:
        return []
    before = previous(current.name, current.experiment_id, store)
    if before is None:
        return [f"no earlier experiment named {current.name!r} to compare with"]
    lines = []
    for variant in current.variants:
        if variant in before.variants:
            lines.append(str(compare(before.variant(variant), current.variant(variant))))
    return lines or [f"experiment {before.experiment_id} has none of these variants"]


def run(args: argparse.Namespace, store: RunStore) -> int:
    """Run an ``eval`` command; returns the exit code."""
    from fm_lab.evals.gate import missed, parse_minimums

    minimums = parse_minimums(args.minimums)
    experiment = experiment_of(args, store)
    print(f"experiment {experiment.experiment_id} ({experiment.name}): "
          f"{len(experiment.df)} rows")
    print(experiment.summary().to_string(index=False))
    for text in comparisons(experiment, store):
        print()
        print(text)
    misses = missed(experiment, minimums)
    for line in misses:
        print(f"FAILED: {line}")
    return 1 if misses else 0
