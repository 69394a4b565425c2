"""``fm_lab.evals.compare``: two experiments (or two variants of one) row by row: per scorer
each side's mean with a bootstrap interval, the paired difference with its interval and
p-value (McNemar's exact test for pass/fail scores, the paired bootstrap otherwise), the rows
that changed, and cost and latency beside quality (``price_as=``: what a side would have
cost on another model, from its recorded tokens)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fm_lab.evals.statistics import (
    bootstrap_ci,
    is_pass_fail,
    mcnemar_exact,
    paired_bootstrap,
)

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.evals.experiment import Experiment
    from fm_lab.store.base import RunStore

_KEY = ["example_id"]


@dataclass
class Side:
    """One side of a comparison: a label and its rows (one per example)."""

    label: str
    rows: pd.DataFrame
    scorers: list[str]
    experiment: Experiment | None = None


def as_side(value: Any, store: RunStore | None = None) -> Side:
    """A side from an :class:`Experiment` (one variant), an experiment id or a :class:`Side`
    (``experiment.variant(name)``)."""
    from fm_lab.evals.experiment import Experiment, load_experiment

    if isinstance(value, Side):
        return value
    if isinstance(value, str):
        value = load_experiment(value, store)
    if isinstance(value, Experiment):
        if len(value.variants) != 1:
            raise ValueError(f"experiment {value.experiment_id} has variants "
                             f"{list(value.variants)}: compare experiment.variant(name)s")
        return value.variant(next(iter(value.variants)))
    raise TypeError(f"compare experiments, their ids or experiment.variant(name), not "
                    f"{type(value).__name__}")


def repriced(rows: pd.DataFrame, model: str) -> pd.Series:
    """Each row's recorded tokens priced as ``model`` (fm_lab's prices: your
    :func:`~fm_lab.set_price` overrides, else litellm's table)."""
    import pandas as pd

    from fm_lab.llm.client import cost_usd
    from fm_lab.tracing.pricing import price_of

    if price_of(model) is None:
        raise LookupError(f"no price known for {model!r}; set one with fm_lab.set_price()")
    return pd.Series([cost_usd(model, {"input_tokens": int(i or 0), "output_tokens": int(o or 0),
                                       "cached_tokens": int(c or 0)})
                      for i, o, c in zip(rows["input_tokens"].fillna(0),
                                         rows["output_tokens"].fillna(0),
                                         rows["cached_tokens"].fillna(0), strict=True)],
                     index=rows.index, dtype="float64")


@dataclass
class Comparison:
    """The result of :func:`compare`: :attr:`table` (one row per scorer, then cost and
    latency), :meth:`changed` rows, and plots."""

    a: Side
    b: Side
    table: pd.DataFrame
    pairs: pd.DataFrame
    alpha: float
    price_as: str | None = None

    @property
    def significant(self) -> list[str]:
        """Metrics whose difference is unlikely to be noise (p < alpha)."""
        return list(self.table.loc[self.table["significant"], "metric"])

    def changed(self, scorer: str | None = None) -> pd.DataFrame:
        """Paired rows whose score changed (``scorer``, else any), with both outputs."""
        import pandas as pd

        names = [scorer] if scorer else self.a.scorers
        frame = self.pairs
        mask = pd.Series(False, index=frame.index)
        for name in names:
            left, right = frame[f"{name}_a"], frame[f"{name}_b"]
            mask = mask | ((left != right) & ~(left.isna() & right.isna()))
        columns = ["example_id", "inputs", "expected", "output_a", "output_b",
                   *[f"{n}_{s}" for n in names for s in ("a", "b")],
                   *[f"{n}.reason_{s}" for n in names for s in ("a", "b")
                     if f"{n}.reason_{s}" in frame.columns]]
        changed: pd.DataFrame = frame.loc[mask, columns].reset_index(drop=True)
        return changed

    def plot_scores(self) -> Any:
        """Each scorer's distribution on both sides (matplotlib figure)."""
        import matplotlib.pyplot as plt

        names = self.a.scorers
        figure, axes = plt.subplots(1, max(len(names), 1), figsize=(4 * max(len(names), 1), 3),
                                    squeeze=False)
        for axis, name in zip(axes[0], names, strict=False):
            for side, suffix in ((self.a, "a"), (self.b, "b")):
                axis.hist(self.pairs[f"{name}_{suffix}"].dropna(), bins=10, alpha=0.5,
                          label=side.label, range=(0, 1))
            axis.set_title(name)
            axis.legend()
        figure.tight_layout()
        return figure

    def plot_quality_vs_cost(self, scorer: str | None = None) -> Any:
        """Mean score (with its interval) against total cost, one point per side."""
        import matplotlib.pyplot as plt

        name = scorer or self.a.scorers[0]
        row = self.table[self.table["metric"] == name].iloc[0]
        cost = self.table[self.table["metric"] == "cost_usd"].iloc[0]
        figure, axis = plt.subplots(figsize=(5, 3.5))
        for suffix, side in (("a", self.a), ("b", self.b)):
            mean = row[f"{suffix}_mean"]
            axis.errorbar([cost[f"{suffix}_mean"] * cost["n"]], [mean],
                          yerr=[[mean - row[f"{suffix}_low"]], [row[f"{suffix}_high"] - mean]],
                          fmt="o", capsize=4, label=side.label)
        axis.set_xlabel("total cost (USD)" + (f" as {self.price_as}" if self.price_as else ""))
        axis.set_ylabel(name)
        axis.legend()
        figure.tight_layout()
        return figure

    def _repr_html_(self) -> str:
        head = (f"<b>{html.escape(self.a.label)}</b> → <b>{html.escape(self.b.label)}</b> "
                f"({len(self.pairs)} paired rows; significant at p < {self.alpha}: "
                f"{html.escape(', '.join(self.significant) or 'none')})")
        return f"<div>{head}{self.table.to_html(index=False, float_format=_fmt)}</div>"

    def __str__(self) -> str:
        shown = self.table[["metric", "test", "a_mean", "b_mean", "difference", "low", "high",
                            "p_value", "significant"]]
        return (f"{self.a.label} -> {self.b.label} ({len(self.pairs)} paired rows)\n"
                + shown.to_string(index=False, float_format=_fmt))


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4g}"


def _metric(name: str, left: Any, right: Any, *, pass_fail: bool, confidence: float,
            seed: int, alpha: float) -> dict[str, Any]:
    a_ci = bootstrap_ci(left, confidence=confidence, seed=seed)
    b_ci = bootstrap_ci(right, confidence=confidence, seed=seed)
    paired = (mcnemar_exact(left, right) if pass_fail
              else paired_bootstrap(left, right, confidence=confidence, seed=seed))
    return {"metric": name, "test": paired.test, "n": paired.n,
            "a_mean": a_ci.mean, "a_low": a_ci.low, "a_high": a_ci.high,
            "b_mean": b_ci.mean, "b_low": b_ci.low, "b_high": b_ci.high,
            "difference": paired.difference, "low": paired.low, "high": paired.high,
            "p_value": paired.p_value,
            "significant": bool(paired.p_value < alpha) if not math.isnan(paired.p_value)
            else False}


def compare(a: Any, b: Any = None, *, scorers: list[str] | None = None,
            price_as: str | None = None, alpha: float = 0.05, confidence: float = 0.95,
            seed: int = 0, store: RunStore | None = None) -> Comparison:
    """Compare ``a`` with ``b`` (experiments, their ids, or ``experiment.variant(name)``; an
    experiment with two variants alone compares them) on the examples both scored.

    Per scorer: each side's mean with a ``confidence`` bootstrap interval, the paired
    difference ``b - a`` with its interval and p-value (McNemar exact for pass/fail, paired
    bootstrap otherwise), ``significant`` when p < ``alpha``; then cost per row and latency.
    ``price_as``: cost both sides as if every recorded token had gone to that model."""
    import pandas as pd

    from fm_lab.evals.experiment import Experiment

    if b is None:
        if not isinstance(a, Experiment) or len(a.variants) != 2:
            raise ValueError("compare(a, b), or compare(experiment) with exactly two variants")
        first, second = list(a.variants)
        a, b = a.variant(first), a.variant(second)
    left, right = as_side(a, store), as_side(b, store)
    names = [n for n in (scorers or left.scorers) if n in right.scorers]
    if scorers and len(names) != len(scorers):
        raise ValueError(f"scorers {sorted(set(scorers) - set(names))} are not on both sides")
    sides = []
    for side in (left, right):
        rows = side.rows.copy()
        if price_as is not None:
            rows["cost_usd"] = repriced(rows, price_as)
        sides.append(rows.drop_duplicates("example_id"))
    keep = ["example_id", "output", "cost_usd", "latency_ms", *names,
            *[f"{n}.reason" for n in names]]
    pairs = sides[0][["inputs", "expected", *keep]].merge(
        sides[1][keep], on="example_id", suffixes=("_a", "_b"))
    if not len(pairs):
        raise ValueError(f"{left.label} and {right.label} share no examples")
    table = [_metric(name, pairs[f"{name}_a"], pairs[f"{name}_b"],
                     pass_fail=is_pass_fail(pd.concat([pairs[f"{name}_a"], pairs[f"{name}_b"]])),
                     confidence=confidence, seed=seed, alpha=alpha) for name in names]
    for metric in ("cost_usd", "latency_ms"):
        table.append(_metric(metric, pairs[f"{metric}_a"].astype(float),
                             pairs[f"{metric}_b"].astype(float), pass_fail=False,
                             confidence=confidence, seed=seed, alpha=alpha))
    return Comparison(Side(left.label, left.rows, names, left.experiment),
                      Side(right.label, right.rows, names, right.experiment),
                      pd.DataFrame(table), pairs, alpha, price_as)
