"""Processors that rewrite the messages sent to a model: ``TokenLimiter`` and
``ToolCallFilter`` (both keep tool calls and their results together)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from fm_lab.agents.memory_api import Message


def _call_ids(message: Message) -> list[str]:
    return [str(c.get("id")) for c in message.get("tool_calls") or []]


def _call_name(call: dict[str, Any]) -> str:
    fn = call.get("function")
    return str(fn.get("name") if isinstance(fn, dict) else call.get("name"))


def units(messages: list[Message]) -> list[list[int]]:
    """Indexes of messages grouped so an assistant message with tool calls and the tool
    results answering it form one unit; every other message is a unit of its own."""
    out: list[list[int]] = []
    open_calls: dict[str, list[int]] = {}
    for index, message in enumerate(messages):
        call_id = message.get("tool_call_id")
        if message.get("role") == "tool" and call_id in open_calls:
            open_calls[str(call_id)].append(index)
            continue
        unit = [index]
        out.append(unit)
        for cid in _call_ids(message):
            open_calls[cid] = unit
    return out


def repair_tool_pairs(messages: Iterable[Message]) -> list[Message]:
    """Drop tool results whose call is missing and tool calls whose result is missing (a
    window cut through a pair); an assistant message left empty goes too."""
    items = list(messages)
    calls = {cid for m in items for cid in _call_ids(m)}
    results = {m.get("tool_call_id") for m in items if m.get("role") == "tool"}
    out: list[Message] = []
    for message in items:
        if message.get("role") == "tool":
            if message.get("tool_call_id") in calls:
                out.append(message)
            continue
        if message.get("tool_calls"):
            kept = [c for c in message["tool_calls"] if c.get("id") in results]
            if len(kept) != len(message["tool_calls"]):
                message = {**message, "tool_calls": kept}
                if not kept:
                    message.pop("tool_calls")
                    if not message.get("content"):
                        continue
        out.append(message)
    return out


class TokenLimiter:
    """Keep the messages within ``max_tokens`` (counted by ``litellm.token_counter`` for
    ``model``): system messages and the newest message stay; the oldest other messages go
    first, an assistant tool-call message always together with its tool results.

    >>> TokenLimiter(1000).max_tokens
    1000
    """

    def __init__(self, max_tokens: int, *, model: str = "gpt-4o") -> None:
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        self.max_tokens = max_tokens
        self.model = model

    def count(self, messages: list[Message]) -> int:
        """Tokens of ``messages`` for this limiter's model."""
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        if not messages:
            return 0
        return int(litellm.token_counter(model=self.model, messages=messages))

    def process(self, messages: list[Message]) -> list[Message]:
        groups = units(messages)
        sizes = [self.count([messages[i] for i in unit]) for unit in groups]
        total = sum(sizes)
        keep = [True] * len(groups)
        for g, unit in enumerate(groups[:-1]):  # the newest unit always stays
            if total <= self.max_tokens:
                break
            if all(messages[i].get("role") == "system" for i in unit):
                continue
            keep[g] = False
            total -= sizes[g]
        return [messages[i] for g, unit in enumerate(groups) if keep[g] for i in unit]


class ToolCallFilter:
    """Remove tool calls and their results: all of them (``exclude=None``) or only calls to
    the tools named in ``exclude``. An assistant message left with no content goes too."""

    def __init__(self, exclude: Iterable[str] | None = None) -> None:
        self.exclude = None if exclude is None else frozenset(exclude)

    def _drop(self, call: dict[str, Any]) -> bool:
        return self.exclude is None or _call_name(call) in self.exclude

    def process(self, messages: list[Message]) -> list[Message]:
        dropped = {str(c.get("id")) for m in messages for c in m.get("tool_calls") or []
                   if self._drop(c)}
        out: list[Message] = []
        for message in messages:
            if message.get("role") == "tool":
                if self.exclude is None or message.get("tool_call_id") in dropped:
                    continue
                out.append(message)
                continue
            calls = message.get("tool_calls")
            if calls:
                kept = [c for c in calls if str(c.get("id")) not in dropped]
                if len(kept) != len(calls):
                    message = {k: v for k, v in message.items() if k != "tool_calls"}
                    if kept:
                        message["tool_calls"] = kept
                    elif not message.get("content"):
                        continue
            out.append(message)
        return out
