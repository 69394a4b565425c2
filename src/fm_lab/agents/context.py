"""What a tool sees while it runs: :class:`ToolContext` (declare a parameter annotated with it;
it is not part of the tool's schema) and the :class:`RequestContext` that flows from
``generate(request_context=...)`` to every tool and sub-agent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fm_lab.llm.chunks import Chunk, ToolOutputChunk

if TYPE_CHECKING:
    from fm_lab.tracing.spans import Span


class RequestContext(dict[str, Any]):
    """Per-request key-values (user id, locale, feature flags) shared by an agent's tools and
    sub-agents; inside a workflow it is the run's request context."""


class Durable(Protocol):
    """The part of a workflow node's context an agent uses to be durable (journaled steps
    and suspensions)."""

    @property
    def run_id(self) -> str: ...

    @property
    def state(self) -> Mapping[str, Any]: ...

    def set_state(self, updates: Mapping[str, Any]) -> None: ...

    async def step(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any: ...

    async def suspend(self, payload: Any = None, *, label: str | None = None,
                      schema: dict[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class AgentInfo:
    """The agent a tool runs for."""

    name: str
    thread_id: str | None
    resource_id: str | None
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class WorkflowInfo:
    """The workflow run a tool runs in (when its agent runs inside a node)."""

    run_id: str
    state: Mapping[str, Any]
    set_state: Callable[[Mapping[str, Any]], None]


class Writer:
    """Streams a tool's own output: ``ctx.writer.write({"progress": 0.5})`` becomes a
    ``tool-output`` chunk of ``Agent.astream`` (and an event on the tool's span)."""

    def __init__(self, tool: str, agent: str, emit: Callable[[Chunk], None] | None,
                 span: Span | None) -> None:
        self._tool, self._agent, self._emit, self._span = tool, agent, emit, span
        self.written: list[Any] = []

    def write(self, data: Any) -> None:
        """Send ``data`` to whoever streams the agent."""
        self.written.append(data)
        if self._span is not None:
            self._span.add_event("tool-output", data=data)
        if self._emit is not None:
            self._emit(ToolOutputChunk(self._tool, data, self._agent))


class SuspendNotDurable(RuntimeError):
    """A tool asked to suspend where nothing can remember the conversation."""


@dataclass
class ToolContext:
    """Handed to a tool that declares a parameter annotated ``ToolContext``."""

    request_context: RequestContext
    tracing: Span | None
    abort: asyncio.Event
    writer: Writer
    agent: AgentInfo
    workflow: WorkflowInfo | None = None
    _suspend: Callable[[Any, str | None, dict[str, Any] | None], Awaitable[Any]] | None = field(
        default=None, repr=False)

    async def suspend(self, payload: Any = None, *, label: str | None = None,
                      schema: dict[str, Any] | None = None) -> Any:
        """Wait for a person: the agent (and its run) suspends here; once resumed with
        ``fm_lab.resume(run_id, data)`` this returns ``data`` (matching ``schema`` if given),
        so ``return await ctx.suspend(...)`` makes the answer the tool's result."""
        if self._suspend is None:
            raise SuspendNotDurable(
                f"tool suspended in agent {self.agent.name!r} outside a workflow: run it with "
                f"agent.generate(..., durable=True) or in an agent node so it can be resumed")
        return await self._suspend(payload, label, schema)
