"""Built-in scorers. Each is a factory returning a :class:`~fm_lab.evals.scorers.Scorer`;
``key=`` picks a field of a dict output (a workflow's outputs), ``expected_key=`` one of the
expected value.

>>> exact_match().name
'exact_match'
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fm_lab.evals.scorers import Case, Score, Scorer

if TYPE_CHECKING:
    from fm_lab.memory.embedders import Embedder


def _pick(value: Any, key: str | None) -> Any:
    if key is None:
        return value
    if isinstance(value, dict):
        return value.get(key)
    return getattr(value, key, None)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        return _text(next(iter(value.values())))
    return json.dumps(value, sort_keys=True, default=str)


def _make(fn: Any, name: str) -> Scorer:
    return Scorer(fn, name)


def exact_match(*, key: str | None = None, expected_key: str | None = None,
                ignore_case: bool = False, strip: bool = True,
                name: str = "exact_match") -> Scorer:
    """Pass when the output equals the expected value (as text, optionally case-blind)."""
    def norm(value: Any) -> str:
        text = _text(value)
        text = text.strip() if strip else text
        return text.lower() if ignore_case else text

    def exact(output: Any, expected: Any) -> bool:
        return norm(_pick(output, key)) == norm(_pick(expected, expected_key))

    return _make(exact, name)


def contains(needle: str | None = None, *, key: str | None = None, ignore_case: bool = True,
             name: str = "contains") -> Scorer:
    """Pass when the output contains ``needle`` (default: the expected value)."""
    def found(output: Any, expected: Any) -> bool:
        wanted, text = _text(needle if needle is not None else expected), _text(
            _pick(output, key))
        return (wanted.lower() in text.lower()) if ignore_case else wanted in text

    return _make(found, name)


def regex(pattern: str, *, key: str | None = None, flags: int = 0,
          name: str = "regex") -> Scorer:
    """Pass when ``pattern`` matches somewhere in the output."""
    compiled = re.compile(pattern, flags)

    def matches(output: Any) -> bool:
        return compiled.search(_text(_pick(output, key))) is not None

    return _make(matches, name)


def json_valid(schema: dict[str, Any] | None = None, *, key: str | None = None,
               name: str = "json_valid") -> Scorer:
    """Pass when the output is JSON (a dict or list, or text that parses) valid against
    ``schema`` (any JSON Schema; None: any JSON). The reason names the first error."""
    from fm_lab.spec.schemas import Validator

    validator = Validator(schema) if schema is not None else None

    def valid(output: Any) -> Score:
        value = _pick(output, key)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                return Score(0.0, False, f"not JSON: {exc}")
        if validator is None:
            return Score(1.0, True)
        error = next(validator.iter_errors(value), None)
        if error is None:
            return Score(1.0, True)
        return Score(0.0, False, f"schema: {error.message}")

    return _make(valid, name)


def numeric(tolerance: float = 0.0, *, relative: bool = False, key: str | None = None,
            expected_key: str | None = None, name: str = "numeric") -> Scorer:
    """Pass when the output is a number within ``tolerance`` of the expected one
    (``relative``: a share of it)."""
    def close(output: Any, expected: Any) -> Score:
        try:
            got = float(_pick(output, key))
            want = float(_pick(expected, expected_key))
        except (TypeError, ValueError):
            return Score(0.0, False, f"not a number: {_pick(output, key)!r}")
        allowed = tolerance * abs(want) if relative else tolerance
        ok = abs(got - want) <= allowed
        return Score(1.0 if ok else 0.0, ok, None if ok else f"{got} is {got - want:+g} off")

    return _make(close, name)


def embedding_similarity(embedder: Embedder | None = None, *, threshold: float | None = None,
                         key: str | None = None, expected_key: str | None = None,
                         name: str = "similarity") -> Scorer:
    """Cosine similarity of output and expected text with a memory embedder (default: the
    memory default); pass/fail when ``threshold`` is given."""
    async def similar(output: Any, expected: Any) -> Score:
        from fm_lab.memory.embedders import default_embedder

        chosen = embedder or default_embedder()
        vectors = await chosen.aembed([_text(_pick(output, key)),
                                       _text(_pick(expected, expected_key))])
        value = float((vectors[0] * vectors[1]).sum())  # unit vectors
        if threshold is None:
            return Score(value)
        return Score(value, value >= threshold)

    return _make(similar, name)


def tool_calls(expected: Sequence[str] | None = None, *, ordered: bool = False,
               name: str = "tool_calls") -> Scorer:
    """Pass when the target called every expected tool (``expected``, else the example's
    ``metadata["tools"]``), in order when ``ordered``."""
    def called(case: Case) -> Score:
        wanted = list(expected if expected is not None else case.metadata.get("tools") or [])
        made = case.tool_calls
        if ordered:
            it = iter(made)
            ok = all(any(tool == m for m in it) for tool in wanted)
        else:
            ok = all(tool in made for tool in wanted)
        missing = [t for t in wanted if t not in made]
        return Score(1.0 if ok else 0.0, ok,
                     None if ok else f"missing {missing}" if missing else f"order {made}")

    return _make(called, name)


def cost_budget(max_usd: float, *, name: str = "cost_budget") -> Scorer:
    """Pass when the row cost at most ``max_usd``."""
    def cheap(case: Case) -> Score:
        cost = case.cost_usd or 0.0
        return Score(1.0 if cost <= max_usd else 0.0, cost <= max_usd, f"${cost:.6f}")

    return _make(cheap, name)


def latency_budget(max_ms: float, *, name: str = "latency_budget") -> Scorer:
    """Pass when the row took at most ``max_ms`` milliseconds."""
    def fast(case: Case) -> Score:
        took = case.latency_ms or 0.0
        return Score(1.0 if took <= max_ms else 0.0, took <= max_ms, f"{took:.1f} ms")

    return _make(fast, name)
