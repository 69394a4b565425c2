"""Thresholds on an experiment's scores: what ``fm-lab eval run --min`` and the pytest helper
:func:`assert_scores` check."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fm_lab.evals.experiment import Experiment


def parse_minimums(items: list[str]) -> dict[str, float]:
    """``["exact=0.8", "judge=0.6"]`` as ``{"exact": 0.8, "judge": 0.6}``."""
    found = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            found[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"--min takes scorer=number, not {item!r}")
    return found


def missed(experiment: Experiment, minimums: Mapping[str, float]) -> list[str]:
    """A line per (variant, scorer) whose mean is below its minimum (or was never scored)."""
    summary = experiment.summary()
    unknown = sorted(set(minimums) - set(experiment.score_names))
    lines = [f"no scorer {name!r} in experiment {experiment.experiment_id} (it has "
             f"{', '.join(experiment.score_names) or 'none'})" for name in unknown]
    for _, row in summary.iterrows():
        for name, least in minimums.items():
            if name in unknown:
                continue
            mean = float(row[name])
            if math.isnan(mean) or mean < least:
                lines.append(f"{name} = {mean:.3f} < {least} (variant {row['variant']})")
    return lines


def assert_scores(experiment: Experiment, min: Mapping[str, float]) -> None:
    """Fail a test (AssertionError listing each miss) when a scorer's mean is below its
    minimum, e.g. ``assert_scores(run(...), min={"exact_match": 0.9})``."""
    lines = missed(experiment, min)
    if lines:
        raise AssertionError(f"experiment {experiment.experiment_id} missed its thresholds:\n"
                             + "\n".join(lines))
