"""The contract between agents and memory: what an :class:`~fm_lab.agents.Agent` asks of its
``memory=`` before a call and hands back after it, and what a processor does to the messages
sent to the model. Messages are OpenAI chat dicts (``role``, ``content``, ``tool_calls``,
``tool_call_id``, ``name``): the storage form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fm_lab.agents.tools import Tool

Message = dict[str, Any]


@dataclass
class MemoryContext:
    """What memory adds to a call: earlier messages (oldest first, placed before the new user
    message), extra system text (e.g. working memory) and tools (e.g.
    ``update_working_memory``)."""

    messages: list[Message] = field(default_factory=list)
    system: str | None = None
    tools: list[Tool] = field(default_factory=list)


@runtime_checkable
class AgentMemory(Protocol):
    """Memory an agent can use: ``prepare`` before the first model call of a turn, ``save``
    with the turn's new messages (each message is handed over exactly once)."""

    async def prepare(self, *, thread_id: str, resource_id: str | None,
                      query: str) -> MemoryContext: ...

    async def save(self, *, thread_id: str, resource_id: str | None,
                   messages: Sequence[Mapping[str, Any]]) -> None: ...


@runtime_checkable
class Processor(Protocol):
    """Rewrites the message list before each model call (token limits, filters)."""

    def process(self, messages: list[Message]) -> list[Message]: ...
