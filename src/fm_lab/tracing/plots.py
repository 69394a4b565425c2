"""Pictures of traces and usage (matplotlib; shown inline in Jupyter, saved anywhere)."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from fm_lab.store.base import RunStore

KIND_COLOURS = {
    "workflow": "#455a64", "node": "#1e88e5", "item": "#64b5f6", "attempt": "#ffb300",
    "agent": "#8e24aa", "llm": "#43a047", "tool": "#f4511e", "memory": "#6d4c41",
    "processor": "#00897b",
}
STATUS_EDGES = {"error": "#c62828", "suspended": "#f9a825", "cancelled": "#757575"}


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    _display_inline(Figure)
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def _display_inline(figure_type: type[Figure]) -> None:
    """In IPython, show returned figures as PNG (a Figure made without pyplot has no
    display of its own)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    if figure_type not in formatter.type_printers:
        formatter.for_type(figure_type, _png)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def plot_trace(run_id: str, *, store: RunStore | None = None, max_spans: int = 300) -> Figure:
    """A waterfall of a run's trace: one bar per span, indented by depth, coloured by kind,
    outlined by status (red: error). Returns the figure; ``fig.savefig("trace.png")``."""
    from matplotlib.patches import Patch

    from fm_lab.tracing.query import trace

    frame = trace(run_id, store=store).head(max_spans)
    if frame.empty:
        raise LookupError(f"run {run_id!r} has no spans")
    start = frame["started_at"].min()
    offsets = (frame["started_at"] - start).dt.total_seconds() * 1000
    durations = frame["duration_ms"].fillna(0).clip(lower=0.05)
    figure, axes = _figure(11, max(2.5, 0.28 * len(frame) + 1))
    positions = list(range(len(frame)))
    axes.barh(positions, durations, left=offsets,
              color=[KIND_COLOURS.get(k, "#90a4ae") for k in frame["kind"]],
              edgecolor=[STATUS_EDGES.get(s, "none") for s in frame["status"]], linewidth=1.5)
    axes.set_yticks(positions)
    axes.set_yticklabels(["· " * d + str(n) for d, n in zip(frame["depth"], frame["name"],
                                                             strict=True)], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("ms since the run started")
    axes.set_title(f"run {run_id}")
    kinds = list(dict.fromkeys(frame["kind"]))
    axes.legend(handles=[Patch(color=KIND_COLOURS.get(k, "#90a4ae"), label=k) for k in kinds],
                loc="lower right", fontsize=8)
    return figure


def plot_usage(by: str | Sequence[str] = "day", metric: str = "cost_usd", *,
               store: RunStore | None = None, **filters: Any) -> Figure:
    """Tokens or cost grouped ``by`` (as :func:`fm_lab.usage`): a line over days, else bars.
    ``metric``: cost_usd, input_tokens, output_tokens, cached_tokens, reasoning_tokens, calls."""
    from fm_lab.tracing.query import usage

    groups = [by] if isinstance(by, str) else list(by)
    frame = usage(groups, store=store, **filters)
    if metric not in frame.columns:
        raise ValueError(f"unknown metric {metric!r}; choose from {list(frame.columns)}")
    figure, axes = _figure(8, 4)
    if frame.empty:
        axes.text(0.5, 0.5, "no model calls recorded", ha="center", va="center")
        return figure
    labels = frame[groups].astype(str).agg(" / ".join, axis=1)
    if groups == ["day"]:
        frame = frame.sort_values("day")
        axes.plot(frame["day"], frame[metric], marker="o")
        figure.autofmt_xdate()
    else:
        axes.bar(labels, frame[metric], color="#1e88e5")
        axes.tick_params(axis="x", rotation=30)
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} by {' / '.join(groups)}")
    return figure
