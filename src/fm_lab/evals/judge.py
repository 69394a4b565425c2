"""LLM-as-judge: a model grades each output against a rubric and answers with a structured
score and reason (JSON Schema response format), on any litellm model through fm_lab's client
(so the call is an ``llm`` span under the scorer's span, priced, and replayable from a
cassette).

>>> judge = llm_judge("Is the answer polite?", model="gpt-4o-mini")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from typing import Any

from fm_lab.evals.scorers import Case, Score, Scorer

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1},
                   "reason": {"type": "string"}},
    "required": ["score", "reason"],
    "additionalProperties": False,
}
_SYSTEM = ("You are a strict evaluator. Grade the OUTPUT against the RUBRIC. Answer only with "
           'JSON: {"score": <number from 0 to 1>, "reason": "<one or two sentences>"}.')


def _block(title: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return f"{title}:\n{text}"


def judge_messages(rubric: str, case: Case) -> list[dict[str, Any]]:
    """The messages a judge is sent for ``case``."""
    parts = [_block("RUBRIC", rubric), _block("INPUT", case.inputs),
             _block("OUTPUT", case.output)]
    if case.expected is not None:
        parts.append(_block("EXPECTED", case.expected))
    return [{"role": "system", "content": _SYSTEM},
            {"role": "user", "content": "\n\n".join(parts)}]


def parse_verdict(text: str | None) -> tuple[float, str]:
    """``(score, reason)`` from a judge's answer (JSON, possibly inside prose or a fence)."""
    found = re.search(r"\{.*\}", text or "", re.S)
    if found is None:
        raise ValueError(f"the judge answered no JSON: {(text or '')[:200]!r}")
    data = json.loads(found.group(0))
    score = float(data["score"])
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"the judge's score {score} is outside 0..1")
    return score, str(data.get("reason") or "")


def llm_judge(rubric: str, *, model: str | None = None, name: str = "judge",
              threshold: float | None = None, temperature: float = 0.0,
              **options: Any) -> Scorer:
    """A scorer that asks ``model`` (default: fm_lab's default model) to grade each output by
    ``rubric`` with a score in 0..1 and a reason; pass/fail when ``threshold`` is given.
    ``options`` go to :func:`fm_lab.llm.client.acomplete` (``fallbacks``, ``model_params``)."""
    if not rubric.strip():
        raise ValueError("an LLM judge needs a rubric")

    async def judge(case: Case) -> Score:
        from fm_lab.llm.client import acomplete
        from fm_lab.llm.defaults import default_model

        answer = await acomplete(
            judge_messages(rubric, case), model=model or default_model(),
            temperature=temperature,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA,
                                             "strict": True}},
            **options)
        score, reason = parse_verdict(answer.text)
        return Score(score, None if threshold is None else score >= threshold, reason)

    return Scorer(judge, name)
