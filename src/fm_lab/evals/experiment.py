"""A stored experiment: its rows (inputs, output, expected, scores, reasons, tokens, cost,
latency, run and trace ids) as a DataFrame, its summary, and its HTML repr."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fm_lab.evals.tables import tables
from fm_lab.store.codec import loads

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.evals.comparison import Side
    from fm_lab.store.base import RunStore


class ExperimentError(LookupError):
    """An experiment that does not exist, or a variant it does not have."""


@dataclass
class Experiment:
    """One experiment: a target run over a dataset version, per variant, and scored."""

    experiment_id: str
    name: str | None
    dataset: str
    dataset_version: int
    target: str
    variants: dict[str, dict[str, Any]]
    scorers: list[str]
    status: str
    store: RunStore | None = None
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def df(self) -> pd.DataFrame:
        """One row per (variant, example): ``variant``, ``example_id``, ``inputs`` (and
        ``inputs.<name>`` per input), ``output``, ``expected``, ``error``, ``<scorer>`` and
        ``<scorer>.reason`` per scorer, ``latency_ms``, tokens, ``cost_usd``, ``model``,
        ``run_id``, ``trace_id``."""
        if self._frame is None:
            self._frame = experiment_frame(self.experiment_id, self.dataset,
                                           self.dataset_version, self.store,
                                           list(self.variants))
        return self._frame

    def refresh(self) -> Experiment:
        """Read the rows again (after :meth:`rescore`, or another process's resume)."""
        self._frame = None
        return self

    @property
    def score_names(self) -> list[str]:
        """The scorers with a column in :attr:`df`."""
        frame = self.df
        return [c[: -len(".reason")] for c in frame.columns if c.endswith(".reason")]

    def variant(self, name: str) -> Side:
        """The rows of one variant, to :func:`~fm_lab.evals.compare` with another."""
        from fm_lab.evals.comparison import Side

        if name not in self.variants:
            raise ExperimentError(f"experiment {self.experiment_id} has no variant {name!r}; "
                                  f"it has {', '.join(self.variants)}")
        rows = self.df[self.df["variant"] == name].reset_index(drop=True)
        label = name if len(self.variants) > 1 or name != "default" else self.label
        return Side(label, rows, self.score_names, self)

    @property
    def label(self) -> str:
        """The name and id (the id alone when unnamed)."""
        return f"{self.name} ({self.experiment_id})" if self.name else self.experiment_id

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Per variant: rows, errors, each scorer's mean with a bootstrap interval, tokens,
        cost and median latency."""
        import pandas as pd

        from fm_lab.evals.statistics import bootstrap_ci

        rows = []
        for variant, part in self.df.groupby("variant", sort=False):
            row: dict[str, Any] = {"variant": variant, "rows": len(part),
                                   "errors": int(part["error"].notna().sum())}
            for name in self.score_names:
                found = bootstrap_ci(part[name].astype(float), confidence=confidence)
                row[name] = found.mean
                row[f"{name}.ci"] = (round(found.low, 4), round(found.high, 4))
            row["input_tokens"] = int(part["input_tokens"].fillna(0).sum())
            row["output_tokens"] = int(part["output_tokens"].fillna(0).sum())
            row["cost_usd"] = float(part["cost_usd"].fillna(0).sum())
            row["latency_ms_p50"] = float(part["latency_ms"].median())
            rows.append(row)
        return pd.DataFrame(rows)

    def rescore(self, scorers: Any, *, cassette: Any = None,
                cassette_mode: str = "replay") -> Experiment:
        """Score the stored outputs again with ``scorers`` (replacing their earlier scores),
        the target not re-run; with ``cassette`` every model call (an LLM judge's) is
        answered from it (``replay``: never a provider)."""
        from fm_lab.evals.runner import rescore

        rescore(self, scorers, cassette=cassette, cassette_mode=cassette_mode)
        return self.refresh()

    def _repr_html_(self) -> str:
        summary = self.summary()
        head = (f"<b>Experiment {html.escape(self.name or '')}</b> "
                f"<code>{html.escape(self.experiment_id)}</code> · dataset "
                f"{html.escape(self.dataset)} v{self.dataset_version} · "
                f"{html.escape(self.target)} · {html.escape(self.status)}")
        shown = summary.copy()
        for name in self.score_names:
            shown[name] = [_mean_ci(m, ci) for m, ci in zip(shown[name], shown[f"{name}.ci"],
                                                              strict=True)]
            shown = shown.drop(columns=f"{name}.ci")
        return f"<div>{head}{shown.to_html(index=False, float_format=_fmt)}</div>"

    def __repr__(self) -> str:
        return (f"Experiment({self.experiment_id!r}, name={self.name!r}, dataset="
                f"{self.dataset!r} v{self.dataset_version}, variants={list(self.variants)}, "
                f"scorers={self.scorers}, status={self.status!r})")


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _mean_ci(mean: float, ci: tuple[float, float]) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def experiment_frame(experiment_id: str, dataset: str, version: int,
                     store: RunStore | None, variants: list[str]) -> pd.DataFrame:
    """The rows of an experiment joined with its examples and scores (wide), variants in
    their given order."""
    import pandas as pd

    from fm_lab.evals.data import load

    table = tables(store)
    results = table.select("eval_results", {"experiment_id": experiment_id})
    found = load(dataset, version, store)
    examples = found.df[["example_id", "expected"]]
    inputs = {e.example_id: e.inputs for e in found.examples}
    order = {name: i for i, name in enumerate(variants)}
    results = results.assign(_order=results["variant"].map(order)).sort_values(
        ["_order", "position"], kind="stable")
    frame = pd.DataFrame({
        "variant": results["variant"].to_numpy(),
        "example_id": results["example_id"].to_numpy(),
        "position": results["position"].astype(int).to_numpy(),
    })
    frame["inputs"] = pd.Series([inputs.get(e) for e in frame["example_id"]], dtype=object)
    keys = list(dict.fromkeys(k for e in found.examples for k in e.inputs))
    for key in keys:  # each input as a column too, to filter and group by
        frame[f"inputs.{key}"] = [(given or {}).get(key) for given in frame["inputs"]]
    frame["output"] = pd.Series([loads(v) for v in results["output"]], dtype=object)
    frame = frame.merge(examples, on="example_id", how="left")
    frame["error"] = pd.Series([loads(v) for v in results["error"]], dtype=object)
    for column in ("latency_ms", "input_tokens", "output_tokens", "cached_tokens", "cost_usd",
                   "model", "run_id", "trace_id", "span_id"):
        frame[column] = results[column].to_numpy()
    scores = table.select("eval_scores", {"experiment_id": experiment_id})
    if len(scores):
        scores = scores.sort_values("scored_at").drop_duplicates(
            ["variant", "position", "scorer"], keep="last")
        wide = scores.pivot(index=["variant", "position"], columns="scorer",
                            values=["value", "reason"])
        for name in sorted(scores["scorer"].unique()):
            part = pd.DataFrame({"variant": wide.index.get_level_values(0),
                                 "position": wide.index.get_level_values(1).astype(int),
                                 name: wide[("value", name)].astype(float).to_numpy(),
                                 f"{name}.reason": wide[("reason", name)].to_numpy()})
            frame = frame.merge(part, on=["variant", "position"], how="left")
    frame.attrs["experiment_id"] = experiment_id
    return frame


def _experiment(row: Any, store: RunStore | None) -> Experiment:
    return Experiment(str(row["experiment_id"]), row["name"] or None, str(row["dataset"]),
                      int(row["dataset_version"]), str(row["target"]),
                      loads(row["variants"]) or {}, loads(row["scorers"]) or [],
                      str(row["status"]), store)


def load_experiment(experiment_id: str, store: RunStore | None = None) -> Experiment:
    """A stored experiment by id."""
    rows = tables(store).select("eval_experiments", {"experiment_id": experiment_id})
    if not len(rows):
        raise ExperimentError(f"no experiment {experiment_id!r}; "
                              "fm_lab.evals.experiments() lists them")
    return _experiment(rows.iloc[0], store)


def experiments(name: str | None = None, store: RunStore | None = None) -> pd.DataFrame:
    """Every experiment (or those called ``name``), newest last."""
    frame = tables(store).select("eval_experiments", {"name": name} if name else None)
    return frame.sort_values("created_at").reset_index(drop=True)


def previous(name: str, before: str, store: RunStore | None = None) -> Experiment | None:
    """The latest finished experiment called ``name`` other than ``before``."""
    frame = experiments(name, store)
    frame = frame[(frame["experiment_id"] != before) & (frame["status"] == "finished")]
    return _experiment(frame.iloc[-1], store) if len(frame) else None
