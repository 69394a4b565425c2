"""Evals in the notebook: datasets versioned in the store, scorers (code, built-in, LLM
judge), experiments across models, prompts and configs as DataFrames, comparisons with paired
statistics, scoring of stored runs, and a CI gate.

>>> import fm_lab.evals as ev
>>> exp = ev.run(answer, ev.dataset("qa"), [ev.exact_match()],  # doctest: +SKIP
...              variants={"mini": {"model": "gpt-4o-mini"}, "4o": {"model": "gpt-4o"}})
>>> ev.compare(exp)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fm_lab.evals.builtin import (
        contains,
        cost_budget,
        embedding_similarity,
        exact_match,
        json_valid,
        latency_budget,
        numeric,
        regex,
        tool_calls,
    )
    from fm_lab.evals.comparison import Comparison, compare
    from fm_lab.evals.data import Dataset, DatasetError, Example, dataset, datasets
    from fm_lab.evals.experiment import Experiment, ExperimentError, experiments, load_experiment
    from fm_lab.evals.gate import assert_scores
    from fm_lab.evals.judge import llm_judge
    from fm_lab.evals.node_scoring import ScoredNodes
    from fm_lab.evals.online import ScoredAgent, score, scored, scores
    from fm_lab.evals.runner import rescore, run
    from fm_lab.evals.scorers import Case, Score, Scorer, scorer
    from fm_lab.evals.statistics import bootstrap_ci, mcnemar_exact, paired_bootstrap

_EXPORTS = {
    **dict.fromkeys(("contains", "cost_budget", "embedding_similarity", "exact_match",
                     "json_valid", "latency_budget", "numeric", "regex", "tool_calls"),
                    "fm_lab.evals.builtin"),
    "Comparison": "fm_lab.evals.comparison", "compare": "fm_lab.evals.comparison",
    **dict.fromkeys(("Dataset", "DatasetError", "Example", "dataset", "datasets"),
                    "fm_lab.evals.data"),
    **dict.fromkeys(("Experiment", "ExperimentError", "experiments", "load_experiment"),
                    "fm_lab.evals.experiment"),
    "rescore": "fm_lab.evals.runner", "run": "fm_lab.evals.runner",
    "assert_scores": "fm_lab.evals.gate",
    "llm_judge": "fm_lab.evals.judge",
    **dict.fromkeys(("ScoredAgent", "score", "scored", "scores"), "fm_lab.evals.online"),
    "ScoredNodes": "fm_lab.evals.node_scoring",
    **dict.fromkeys(("Case", "Score", "Scorer", "scorer"), "fm_lab.evals.scorers"),
    **dict.fromkeys(("bootstrap_ci", "mcnemar_exact", "paired_bootstrap"),
                    "fm_lab.evals.statistics"),
}
__all__ = [
    "Case",
    "Comparison",
    "Dataset",
    "DatasetError",
    "Example",
    "Experiment",
    "ExperimentError",
    "Score",
    "ScoredAgent",
    "ScoredNodes",
    "Scorer",
    "assert_scores",
    "bootstrap_ci",
    "compare",
    "contains",
    "cost_budget",
    "dataset",
    "datasets",
    "embedding_similarity",
    "exact_match",
    "experiments",
    "json_valid",
    "latency_budget",
    "llm_judge",
    "load_experiment",
    "mcnemar_exact",
    "numeric",
    "paired_bootstrap",
    "regex",
    "rescore",
    "run",
    "score",
    "scored",
    "scorer",
    "scores",
    "tool_calls",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fm_lab.evals' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
