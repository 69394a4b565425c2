"""The offline provider: models ``offline/<name>`` that answer from a script, so tests and the
demo run with no network and no key. A script's answer is OpenAI chat JSON (:func:`completion`,
:func:`stream`), read by the client directly (:mod:`fm_lab.llm.offline_route`, no litellm) or
through litellm's custom provider (:func:`register`); its usage counts tokens with
:mod:`fm_lab.llm.offline_tokens`.

>>> from fm_lab.llm.offline import script
>>> model = script("greeter", [("hello", "Hi there!")], default="Sorry?")
>>> model
'offline/greeter'
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fm_lab.llm.offline_tokens import count, count_calls, count_messages

Reply = str | dict[str, Any]
ReplyFn = Callable[[list[dict[str, Any]], list[dict[str, Any]] | None], Reply]


@dataclass
class Script:
    """Rules tried in order against the last user message (regex search), else ``default``;
    or a function of (messages, tools) that returns the reply. A reply is text, or
    ``{"tool_calls": [{"name": ..., "arguments": {...}}]}`` and/or ``{"content": ...}``
    (plus ``"reasoning"`` text, for models that show their reasoning)."""

    rules: list[tuple[str, Reply]] = field(default_factory=list)
    default: Reply | None = None
    fn: ReplyFn | None = None

    def reply(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Reply:
        if self.fn is not None:
            return self.fn(messages, tools)
        last = _last_user_text(messages)
        for pattern, answer in self.rules:
            if re.search(pattern, last, re.IGNORECASE):
                return answer
        if self.default is not None:
            return self.default
        return f"(offline) {last}"


_SCRIPTS: dict[str, Script] = {}
_LOCK = threading.Lock()


def script(name: str, rules: list[tuple[str, Reply]] | None = None, *, default: Reply | None = None,
           fn: ReplyFn | None = None) -> str:
    """Register a scripted offline model and return its litellm name ``offline/<name>``.
    litellm learns of the provider at the first call (:func:`register`), not here."""
    with _LOCK:
        _SCRIPTS[name] = Script(list(rules or []), default, fn)
    return f"offline/{name}"


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") in ("user", "tool"):
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _message(reply: Reply) -> tuple[str | None, list[dict[str, Any]] | None]:
    """The reply as assistant text and OpenAI tool calls."""
    if not isinstance(reply, dict):
        return reply, None
    content = reply.get("content")
    if isinstance(content, dict | list):
        content = json.dumps(content)
    calls = reply.get("tool_calls") or []
    tool_calls = [{"id": call.get("id") or f"call_{uuid.uuid4().hex[:12]}",
                   "type": "function",
                   "function": {"name": call["name"],
                                "arguments": json.dumps(call.get("arguments", {}))}}
                  for call in calls] or None
    return content, tool_calls


def _tokens(messages: list[dict[str, Any]], content: str | None,
            tool_calls: list[dict[str, Any]] | None) -> tuple[int, int]:
    """Prompt and completion tokens, counted as :mod:`fm_lab.llm.offline_tokens` says."""
    return count_messages(messages), count(content) + count_calls(tool_calls)


def _usage(prompt: int, completion: int, reasoning: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion + reasoning,
            "total_tokens": prompt + completion + reasoning,
            "completion_tokens_details": {"reasoning_tokens": reasoning} if reasoning else None}


def _reasoning(reply: Reply) -> tuple[str | None, int]:
    text = reply.get("reasoning") if isinstance(reply, dict) else None
    return text, count(text)


def _reply(model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
           ) -> Reply:
    """What the script of ``model`` (``offline/<name>``; an unknown name echoes) answers."""
    return _SCRIPTS.get(model.split("/", 1)[-1], Script()).reply(messages, tools)


def completion(model: str, messages: list[dict[str, Any]],
               tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The script's answer as an OpenAI chat completion (JSON), with counted usage."""
    reply = _reply(model, messages, tools)
    content, tool_calls = _message(reply)
    prompt, completion_tokens = _tokens(messages, content, tool_calls)
    reasoning, reasoning_tokens = _reasoning(reply)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = reasoning
    return {"id": f"offline-{uuid.uuid4().hex[:16]}", "created": int(time.time()),
            "model": model, "object": "chat.completion",
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if tool_calls else "stop"}],
            "usage": _usage(prompt, completion_tokens, reasoning_tokens)}


_PIECE = re.compile(r"\S+\s*|\s+")


def stream(model: str, messages: list[dict[str, Any]],
           tools: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The script's answer as OpenAI stream chunks (JSON): a reasoning piece and a text piece
    per word, one chunk per tool call, then the finish with usage."""
    reply = _reply(model, messages, tools)
    content, tool_calls = _message(reply)
    prompt, completion_tokens = _tokens(messages, content, tool_calls)
    reasoning, reasoning_tokens = _reasoning(reply)
    head = {"id": f"offline-{uuid.uuid4().hex[:16]}", "created": int(time.time()),
            "model": model, "object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None = None,
              usage: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **({"usage": usage} if usage else {})}

    chunks = [chunk({"reasoning_content": p}) for p in _PIECE.findall(reasoning or "")]
    chunks += [chunk({"content": p}) for p in _PIECE.findall(content or "")]
    chunks += [chunk({"tool_calls": [{**call, "index": index}]})
               for index, call in enumerate(tool_calls or [])]
    chunks.append(chunk({}, "tool_calls" if tool_calls else "stop",
                        _usage(prompt, completion_tokens, reasoning_tokens)))
    return chunks


def _for_litellm(chunk: dict[str, Any]) -> Any:
    """An OpenAI stream chunk as litellm's ``CustomLLM`` streams it: reasoning as a
    ``ModelResponseStream``, anything else as a ``GenericStreamingChunk`` dict."""
    from litellm.types.utils import ModelResponseStream

    choice = chunk["choices"][0]
    delta = choice["delta"]
    if delta.get("reasoning_content"):
        return ModelResponseStream(**chunk)
    calls = delta.get("tool_calls")
    usage = chunk.get("usage")
    if usage and usage.get("completion_tokens_details") is None:
        usage = {k: v for k, v in usage.items() if k != "completion_tokens_details"}
    return {"text": delta.get("content") or "", "tool_use": calls[0] if calls else None,
            "is_finished": choice["finish_reason"] is not None,
            "finish_reason": choice["finish_reason"] or "", "usage": usage, "index": 0}


_PROVIDER: Any = None


def register() -> None:
    """Make ``offline/<name>`` models known to litellm (idempotent)."""
    global _PROVIDER
    if _PROVIDER is not None:
        return
    import litellm
    from litellm.llms.custom_llm import CustomLLM

    class OfflineLLM(CustomLLM):
        def completion(self, model: str, messages: list[Any], *args: Any,
                       **kwargs: Any) -> Any:
            from litellm.types.utils import ModelResponse, Usage

            tools = (kwargs.get("optional_params") or {}).get("tools")
            answer = completion(f"offline/{model.split('/', 1)[-1]}", messages, tools)
            return ModelResponse(**{**answer, "usage": Usage(**answer["usage"])})

        async def acompletion(self, model: str, messages: list[Any], *args: Any,
                              **kwargs: Any) -> Any:
            return self.completion(model, messages, *args, **kwargs)

        def streaming(self, model: str, messages: list[Any], *args: Any,
                      **kwargs: Any) -> Iterator[Any]:
            tools = (kwargs.get("optional_params") or {}).get("tools")
            for chunk in stream(f"offline/{model.split('/', 1)[-1]}", messages, tools):
                yield _for_litellm(chunk)

        async def astreaming(  # type: ignore[override]  # litellm iterates an async generator
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> AsyncIterator[Any]:
            for chunk in self.streaming(model, messages, *args, **kwargs):
                yield chunk

    _PROVIDER = OfflineLLM()
    litellm.custom_provider_map = [
        *[p for p in litellm.custom_provider_map if p.get("provider") != "offline"],
        {"provider": "offline", "custom_handler": _PROVIDER},
    ]
    from litellm.utils import custom_llm_setup

    custom_llm_setup()  # type: ignore[no-untyped-call]
