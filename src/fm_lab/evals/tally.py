"""Sum the tokens and cost of the LLM calls made under a span (a row of an experiment, a
scorer call) as their spans go by on their way to the trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fm_lab.tracing.spans import Span, SpanContext, SpanSink


@dataclass
class Tally:
    """A span sink that passes records on to ``sink`` and adds up the ``llm`` ones."""

    sink: SpanSink
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    models: list[str] = field(default_factory=list)

    def __call__(self, record: dict[str, Any]) -> None:
        if record.get("kind") == "llm" and record.get("status") == "ok":
            from fm_lab.llm.client import cost_usd

            usage = {key: int(record.get(key) or 0)
                     for key in ("input_tokens", "output_tokens", "cached_tokens")}
            self.input_tokens += usage["input_tokens"]
            self.output_tokens += usage["output_tokens"]
            self.cached_tokens += usage["cached_tokens"]
            model = record.get("model")
            if model:
                self.cost_usd += cost_usd(str(model), usage)
                if model not in self.models:
                    self.models.append(str(model))
        self.sink(record)

    def add(self, usage: dict[str, Any], cost: float, model: str | None) -> None:
        """Usage a target reported itself (an agent's result), not seen as spans here."""
        self.input_tokens += int(usage.get("input_tokens") or 0)
        self.output_tokens += int(usage.get("output_tokens") or 0)
        self.cached_tokens += int(usage.get("cached_tokens") or 0)
        self.cost_usd += cost
        if model and model not in self.models:
            self.models.append(model)

    def usage(self) -> dict[str, Any]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cached_tokens": self.cached_tokens, "cost_usd": self.cost_usd}

    def stamp(self, span: Span) -> None:
        """Put the totals on ``span`` (not an ``llm`` span, so usage queries count each call
        once); nothing when no model was called."""
        if not (self.input_tokens or self.output_tokens or self.cost_usd):
            return
        span.set_usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens,
                       cost_usd=self.cost_usd)


def tallied(parent: SpanContext | None, name: str, kind: str, input: Any = None,
            attributes: dict[str, Any] | None = None) -> tuple[Span, Tally | None]:
    """A span under ``parent`` whose descendants' LLM usage is added up (no tally when
    nothing is traced)."""
    if parent is None:
        return Span(None, name, kind, input, attributes), None
    tally = Tally(parent.sink)
    tapped = SpanContext(parent.trace_id, parent.span_id, parent.run_id, tally,
                         parent.workflow_id, parent.node_id, parent.agent, parent.resource_id)
    return Span(tapped, name, kind, input, attributes), tally
