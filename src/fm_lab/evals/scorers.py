"""Scorers: plain functions of a row's ``output`` (and ``expected``, ``inputs``,
``metadata``, by parameter name) that return a bool (pass/fail), a number, a :class:`Score`
or a dict with ``score`` and ``reason``. Each call is a span (kind ``scorer``) with the tokens
and cost of the LLM calls made inside it.

>>> @scorer
... def short(output):
...     return len(output) < 100
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fm_lab.evals.tally import tallied
from fm_lab.tracing.spans import SpanContext

_ARGUMENTS = ("output", "expected", "inputs", "metadata", "case")


@dataclass(frozen=True)
class Score:
    """A scorer's verdict: ``value`` (a number; pass/fail as 1.0/0.0), ``passed`` when the
    scorer is pass/fail, and ``reason``."""

    value: float | None
    passed: bool | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Case:
    """What a scorer may look at: one row of an experiment, or one stored run."""

    output: Any
    expected: Any = None
    inputs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    cost_usd: float | None = None
    tool_calls: list[str] = field(default_factory=list)


@dataclass
class ScoreRow:
    """One scorer's verdict on one case, with what the call cost."""

    scorer: str
    score: Score
    trace_id: str | None
    span_id: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class Scorer:
    """A named scoring function (sync or async); ``sample`` is the share of stored runs it
    scores when attached for online scoring (1.0: all)."""

    fn: Callable[..., Any]
    name: str
    sample: float = 1.0
    arguments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.sample <= 1.0:
            raise ValueError(f"scorer {self.name!r}: sample must be in (0, 1], not {self.sample}")
        parameters = inspect.signature(self.fn).parameters
        unknown = [p for p, spec in parameters.items() if p not in _ARGUMENTS
                   and spec.default is inspect.Parameter.empty
                   and spec.kind not in (spec.VAR_KEYWORD, spec.VAR_POSITIONAL)]
        if unknown:
            raise TypeError(f"scorer {self.name!r} asks for {', '.join(unknown)}; a scorer "
                            f"takes any of {', '.join(_ARGUMENTS)}")
        self.arguments = tuple(p for p in parameters if p in _ARGUMENTS)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    async def ascore(self, case: Case) -> Score:
        """The verdict on ``case`` (an error in the scorer is a missing score with the
        error as its reason, never a failed experiment)."""
        given = {name: getattr(case, name) if name != "case" else case
                 for name in self.arguments}
        try:
            result = self.fn(**given)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return Score(None, None, f"scorer error: {type(exc).__name__}: {exc}")
        return as_score(self.name, result)


def as_score(name: str, result: Any) -> Score:
    """A scorer's return value as a :class:`Score`."""
    if isinstance(result, Score):
        return result
    if result is None:
        return Score(None)
    if isinstance(result, bool):
        return Score(1.0 if result else 0.0, result)
    if isinstance(result, (int, float)):
        return Score(float(result))
    if isinstance(result, dict) and ("score" in result or "value" in result):
        value = result.get("score", result.get("value"))
        passed = result.get("passed", value if isinstance(value, bool) else None)
        return Score(None if value is None else float(value),
                     None if passed is None else bool(passed), result.get("reason"))
    raise TypeError(f"scorer {name!r} returned {type(result).__name__}; return a bool, a "
                    "number, a Score or a dict with 'score' (and 'reason')")


def scorer(fn: Callable[..., Any] | None = None, *, name: str | None = None,
           sample: float = 1.0) -> Any:
    """Make ``fn`` a :class:`Scorer` (as ``@scorer`` or ``@scorer(name=..., sample=0.1)``)."""
    def wrap(inner: Callable[..., Any]) -> Scorer:
        if isinstance(inner, Scorer):
            return Scorer(inner.fn, name or inner.name, sample)
        return Scorer(inner, name or str(getattr(inner, "__name__", "scorer")), sample)

    return wrap(fn) if fn is not None else wrap


def as_scorers(scorers: Scorer | Callable[..., Any] | Sequence[Any] | None) -> list[Scorer]:
    """Scorers from one or a list of scorers or plain functions; names must differ."""
    if scorers is None:
        return []
    items = [scorers] if callable(scorers) else list(scorers)
    found = [item if isinstance(item, Scorer) else scorer(item) for item in items]
    names = [s.name for s in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"two scorers are named {', '.join(repeated)}: give one a name= ")
    return found


async def score_case(scorers: Sequence[Scorer], case: Case,
                     parent: SpanContext | None) -> list[ScoreRow]:
    """Every scorer's verdict on ``case``, each call a ``scorer`` span under ``parent``."""
    rows = []
    for each in scorers:
        span, tally = tallied(parent, each.name, "scorer", None, {"scorer": each.name})
        with span:
            verdict = await each.ascore(case)
            span.output = {"value": verdict.value, "passed": verdict.passed,
                           "reason": verdict.reason}
            if tally is not None:
                tally.stamp(span)
            if verdict.reason and verdict.reason.startswith("scorer error:"):
                span.status = "error"
        usage = tally.usage() if tally is not None else {}
        rows.append(ScoreRow(each.name, verdict, span.trace_id, span.span_id,
                             int(usage.get("input_tokens", 0)),
                             int(usage.get("output_tokens", 0)),
                             float(usage.get("cost_usd", 0.0))))
    return rows


def is_missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
