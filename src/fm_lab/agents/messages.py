"""A conversation with where each message came from, rendered in every form fm_lab needs.

Messages are kept in the storage form (OpenAI chat dicts: ``role``, ``content``,
``tool_calls``, ``tool_call_id``, ``name``); each carries its source: ``system``, ``memory``
(recalled), ``user`` (this turn's input) or ``response`` (this turn's model and tool output).

>>> ml = MessageList()
>>> ml.add_system("Be brief.")
>>> ml.add_user("hi")
>>> ml.add_response({"role": "assistant", "content": "Hello!"})
>>> [m["role"] for m in ml.drain_unsaved()]
['user', 'assistant']
>>> ml.drain_unsaved()
[]
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Source = Literal["system", "memory", "user", "response"]
Message = dict[str, Any]
_SOURCES = ("system", "memory", "user", "response")
_ROLES = ("system", "user", "assistant", "tool")
_KEYS = {"system": ("role", "content", "name"), "user": ("role", "content", "name"),
         "assistant": ("role", "content", "tool_calls", "name"),
         "tool": ("role", "content", "tool_call_id")}


@dataclass
class _Entry:
    message: Message
    source: Source
    saved: bool


def _checked(message: Mapping[str, Any]) -> Message:
    role = message.get("role")
    if role not in _ROLES:
        raise ValueError(f"a message needs a role among {', '.join(_ROLES)}; got {role!r}")
    if role == "tool" and not message.get("tool_call_id"):
        raise ValueError("a tool message needs the tool_call_id it answers")
    out = {k: copy.deepcopy(v) for k, v in message.items() if k in _KEYS[role] and v is not None}
    if role == "assistant" and "content" not in out:
        out["content"] = None
    if role != "assistant" and "content" not in out:
        out["content"] = ""
    return out


def _text(content: Any) -> str:
    """A content value (text or a list of parts) as plain text."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _arguments(raw: str) -> Any:
    try:
        return json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_raw": raw}


class MessageList:
    """Ordered messages with their sources; ``drain_unsaved()`` hands each new message out once
    (for incremental saves), ``serialize()`` keeps everything for a suspend/resume."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []

    # ---- adding ----------------------------------------------------------------------------
    def add(self, message: Mapping[str, Any] | Iterable[Mapping[str, Any]],
            source: Source) -> None:
        """Add one message (or several) from ``source``."""
        if source not in _SOURCES:
            raise ValueError(f"source must be one of {', '.join(_SOURCES)}, not {source!r}")
        items = [message] if isinstance(message, Mapping) else list(message)
        saved = source in ("system", "memory")  # never handed to memory to save again
        self._entries += [_Entry(_checked(m), source, saved) for m in items]

    def add_system(self, text: str) -> None:
        """Add system instructions."""
        self.add({"role": "system", "content": text}, "system")

    def add_user(self, content: str | list[dict[str, Any]]) -> None:
        """Add this turn's user input (text or content parts)."""
        self.add({"role": "user", "content": content}, "user")

    def add_memory(self, messages: Iterable[Mapping[str, Any]]) -> None:
        """Add recalled messages (already stored: never drained)."""
        self.add(list(messages), "memory")

    def add_response(self, message: Mapping[str, Any]) -> None:
        """Add a model answer or a tool result of this turn."""
        self.add(message, "response")

    # ---- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    @property
    def messages(self) -> list[Message]:
        """Every message, storage form (copies)."""
        return [copy.deepcopy(e.message) for e in self._entries]

    def sources(self) -> list[Source]:
        """The source of each message, in order."""
        return [e.source for e in self._entries]

    def by_source(self, *sources: Source) -> list[Message]:
        """The messages from the given sources."""
        return [copy.deepcopy(e.message) for e in self._entries if e.source in sources]

    def drain_unsaved(self) -> list[Message]:
        """New user and response messages not handed out before (each exactly once)."""
        out = []
        for entry in self._entries:
            if not entry.saved:
                entry.saved = True
                out.append(copy.deepcopy(entry.message))
        return out

    def serialize(self) -> dict[str, Any]:
        """Everything as JSON-ready data (messages, sources, what was saved)."""
        return {"version": 1, "entries": [
            {"message": copy.deepcopy(e.message), "source": e.source, "saved": e.saved}
            for e in self._entries]}

    @classmethod
    def deserialize(cls, data: Mapping[str, Any]) -> MessageList:
        """The list :meth:`serialize` described."""
        if data.get("version") != 1 or not isinstance(data.get("entries"), list):
            raise ValueError("not a serialized MessageList (expected version 1 with entries)")
        out = cls()
        for item in data["entries"]:
            out.add(item["message"], item["source"])
            out._entries[-1].saved = bool(item["saved"])
        return out

    @classmethod
    def from_openai(cls, messages: Iterable[Mapping[str, Any]],
                    source: Source = "memory") -> MessageList:
        """A list from OpenAI chat messages (system messages keep the ``system`` source)."""
        out = cls()
        for message in messages:
            out.add(message, "system" if message.get("role") == "system" else source)
        return out

    # ---- rendering -------------------------------------------------------------------------
    def to_storage(self) -> list[Message]:
        """What memory stores: every non-system message (OpenAI chat dicts)."""
        return [copy.deepcopy(e.message) for e in self._entries if e.source != "system"]

    def to_openai(self) -> list[Message]:
        """OpenAI Chat Completions ``messages`` (also what litellm takes)."""
        return self.messages

    def to_anthropic(self) -> tuple[str | None, list[Message]]:
        """Anthropic Messages API ``(system, messages)``: system text split out, tool calls as
        ``tool_use`` blocks, tool results as ``tool_result`` blocks in a user turn, and
        consecutive messages of one role merged (the API wants them alternating)."""
        system = [_text(e.message["content"]) for e in self._entries
                  if e.message["role"] == "system"]
        out: list[Message] = []
        for entry in self._entries:
            message = entry.message
            role = message["role"]
            if role == "system":
                continue
            if role == "tool":
                blocks: list[dict[str, Any]] = [{
                    "type": "tool_result", "tool_use_id": message["tool_call_id"],
                    "content": _text(message["content"])}]
                role = "user"
            elif role == "assistant":
                blocks = [{"type": "text", "text": message["content"]}] if _text(
                    message.get("content")) else []
                blocks += [{"type": "tool_use", "id": call["id"],
                            "name": call["function"]["name"],
                            "input": _arguments(call["function"]["arguments"])}
                           for call in message.get("tool_calls") or []]
            else:
                blocks = _anthropic_parts(message["content"])
            if out and out[-1]["role"] == role:
                out[-1]["content"] += blocks
            else:
                out.append({"role": role, "content": blocks})
        return ("\n\n".join(system) or None), out

    @classmethod
    def from_anthropic(cls, system: str | None, messages: Iterable[Mapping[str, Any]],
                       source: Source = "memory") -> MessageList:
        """The list an Anthropic ``(system, messages)`` pair describes (the inverse of
        :meth:`to_anthropic`, up to merged turns)."""
        out = cls()
        if system:
            out.add_system(system)
        for message in messages:
            content = message["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if message["role"] == "assistant":
                text = "".join(b["text"] for b in blocks if b["type"] == "text")
                calls = [{"id": b["id"], "type": "function", "function": {
                    "name": b["name"], "arguments": json.dumps(b["input"])}}
                    for b in blocks if b["type"] == "tool_use"]
                out.add({"role": "assistant", "content": text or None,
                         "tool_calls": calls or None}, source)
                continue
            for block in blocks:
                if block["type"] == "tool_result":
                    out.add({"role": "tool", "tool_call_id": block["tool_use_id"],
                             "content": _text(block["content"])}, source)
                elif block["type"] == "text":
                    out.add({"role": "user", "content": block["text"]}, source)
        return out

    def to_ui(self) -> list[dict[str, Any]]:
        """Chat-UI form: one entry per message with ``id``, ``role``, ``source`` and typed
        ``parts`` (``text``, ``tool-call``, ``tool-result`` with the tool's name)."""
        names: dict[str, str] = {}
        out = []
        for index, entry in enumerate(self._entries):
            message = entry.message
            parts: list[dict[str, Any]] = []
            if message["role"] == "tool":
                call_id = message["tool_call_id"]
                parts.append({"type": "tool-result", "id": call_id,
                              "name": names.get(call_id), "result": message["content"]})
            else:
                if _text(message.get("content")):
                    parts.append({"type": "text", "text": _text(message["content"])})
                for call in message.get("tool_calls") or []:
                    names[call["id"]] = call["function"]["name"]
                    parts.append({"type": "tool-call", "id": call["id"],
                                  "name": call["function"]["name"],
                                  "arguments": _arguments(call["function"]["arguments"])})
            out.append({"id": f"m{index}", "role": message["role"], "source": entry.source,
                        "parts": parts})
        return out


def _anthropic_parts(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return [{"type": "text", "text": _text(content)}]
    blocks: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "image_url":
            blocks.append({"type": "image", "source": {"type": "url",
                                                       "url": part["image_url"]["url"]}})
        else:
            raise ValueError(f"no Anthropic form for a content part of type {part.get('type')!r}")
    return blocks
