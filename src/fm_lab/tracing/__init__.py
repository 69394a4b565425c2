"""Tracing: spans in DuckDB, traces/usage/costs as DataFrames, pictures, OpenTelemetry."""

from fm_lab.tracing.otel import export_otel, instrument
from fm_lab.tracing.plots import plot_trace, plot_usage
from fm_lab.tracing.pricing import price_of, set_price
from fm_lab.tracing.query import errors, slowest, sql, trace, traces, usage
from fm_lab.tracing.redact import redact_pattern, secret
from fm_lab.tracing.spans import Span, current, span
from fm_lab.tracing.standalone import traced

__all__ = [
    "Span",
    "current",
    "errors",
    "export_otel",
    "instrument",
    "plot_trace",
    "plot_usage",
    "price_of",
    "redact_pattern",
    "secret",
    "set_price",
    "slowest",
    "span",
    "sql",
    "trace",
    "traced",
    "traces",
    "usage",
]
