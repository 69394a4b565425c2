"""What an agent turn returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class _NodeOutput(Protocol):
    @property
    def output(self) -> Any: ...


class FinishedRun(Protocol):
    """What :meth:`AgentResult.from_run` reads of an ``fm_lab.Run`` (the engine sits above
    agents, so it is named by the members used, not imported)."""

    @property
    def run_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> object: ...
    def node(self, node_id: str) -> _NodeOutput: ...


@dataclass
class AgentResult:
    """The answer and what it took: tool calls, steps, token usage and cost (totals include
    sub-agents; ``usage_by_agent`` splits them). A durable run that waits for a person has
    ``status="suspended"`` and the ``run_id`` to ``fm_lab.resume``."""

    text: str | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    usage_by_agent: dict[str, dict[str, float]] = field(default_factory=dict)
    status: str = "succeeded"
    run_id: str | None = None
    model: str | None = None  # the model that gave the final answer (a fallback, maybe)
    trace_id: str | None = None  # for fm_lab.trace(); None when nothing was traced

    def to_dict(self) -> dict[str, Any]:
        """JSON form (an ``agent`` node's output); messages are left out."""
        return {"text": self.text, "tool_calls": self.tool_calls, "steps": self.steps,
                "model": self.model, "usage": self.usage, "cost_usd": self.cost_usd,
                "usage_by_agent": self.usage_by_agent}

    @classmethod
    def from_run(cls, run: FinishedRun, node: str = "agent") -> AgentResult:
        """The result of a durable agent run (suspended, or finished with its node output)."""
        if run.status == "suspended":
            return cls(None, status="suspended", run_id=run.run_id)
        if run.status != "succeeded":
            from fm_lab.exceptions import NodeError

            raise NodeError(f"agent run {run.run_id} {run.status}: {run.error}",
                            kind="user", retryable=False, domain="agent")
        data = dict(run.node(node).output)
        return cls(data.pop("text"), run_id=run.run_id, **data)

    def _add(self, agent: str, model: str, usage: Mapping[str, int], cost: float) -> None:
        for key, value in usage.items():
            self.usage[key] = self.usage.get(key, 0) + value
        self.cost_usd += cost
        mine = self.usage_by_agent.setdefault(agent, {"calls": 0, "cost_usd": 0.0})
        mine["calls"] += 1
        mine["cost_usd"] += cost
        for key, value in usage.items():
            mine[key] = mine.get(key, 0) + value

    def _merge(self, other: AgentResult) -> None:
        for key, value in other.usage.items():
            self.usage[key] = self.usage.get(key, 0) + value
        self.cost_usd += other.cost_usd
        for agent, figures in other.usage_by_agent.items():
            mine = self.usage_by_agent.setdefault(agent, {})
            for name, figure in figures.items():
                mine[name] = mine.get(name, 0) + figure
