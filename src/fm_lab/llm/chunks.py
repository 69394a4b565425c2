"""Typed stream chunks: what ``fm_lab.llm.astream`` and ``Agent.astream`` yield.

Each chunk is a small frozen dataclass with a ``type`` tag (``text-delta``, ``reasoning``,
``tool-call``, ``tool-result``, ``tool-output``, ``finish``); ``chunk.to_dict()`` gives its
JSON form (for a UI or a log).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class _Chunk:
    def to_dict(self) -> dict[str, Any]:
        """The chunk as a JSON-ready dict (with its ``type``)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TextDelta(_Chunk):
    """A piece of the answer's text."""

    text: str
    agent: str | None = None
    type: Literal["text-delta"] = "text-delta"


@dataclass(frozen=True, slots=True)
class ReasoningDelta(_Chunk):
    """A piece of the model's reasoning (models that expose it)."""

    text: str
    agent: str | None = None
    type: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True, slots=True)
class ToolCallChunk(_Chunk):
    """A complete tool call the model asked for (arguments as the model's JSON text)."""

    id: str
    name: str
    arguments: str
    agent: str | None = None
    type: Literal["tool-call"] = "tool-call"


@dataclass(frozen=True, slots=True)
class ToolResultChunk(_Chunk):
    """What a tool returned (or the validation problems the model gets back: ``ok=False``)."""

    id: str
    name: str
    result: Any
    ok: bool = True
    agent: str | None = None
    type: Literal["tool-result"] = "tool-result"


@dataclass(frozen=True, slots=True)
class ToolOutputChunk(_Chunk):
    """Anything a running tool writes with ``ctx.writer.write(...)``."""

    tool: str
    data: Any
    agent: str | None = None
    type: Literal["tool-output"] = "tool-output"


@dataclass(frozen=True, slots=True)
class Finish(_Chunk):
    """The end: why it stopped, the whole text, token usage (summed over steps for agents)."""

    finish_reason: str
    text: str | None = None
    model: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    steps: int = 1
    agent: str | None = None
    type: Literal["finish"] = "finish"


Chunk = TextDelta | ReasoningDelta | ToolCallChunk | ToolResultChunk | ToolOutputChunk | Finish
