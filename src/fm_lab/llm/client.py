"""One async entry over ``litellm.acompletion`` (and its streaming sibling): spans with usage,
an ordered fallback chain with retries per model, clear errors for what must not fall back,
and record/replay through an open :func:`~fm_lab.llm.cassette`. Answers are read as OpenAI
JSON, so offline models answer by :mod:`fm_lab.llm.offline_route` without litellm."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from fm_lab.exceptions import NodeError
from fm_lab.llm import offline_route
from fm_lab.llm.cassette import CassetteMiss, active
from fm_lab.llm.chunks import Chunk, Finish, ReasoningDelta, TextDelta, ToolCallChunk
from fm_lab.tracing.spans import Span, SpanContext, current
from fm_lab.tracing.standalone import begin, standalone

T = TypeVar("T")
_PRELOAD_LOCK = threading.Lock()
# move on to the next model for these (after this model's retries, but at once for a full
# context window); never for authentication or bad requests, which fail clearly
_RETRYABLE = ("RateLimitError", "ServiceUnavailableError", "InternalServerError", "Timeout",
              "APIConnectionError", "APIError", "OfflineScriptError")
_NEXT_MODEL = ("ContextWindowExceededError",)
_FATAL = ("AuthenticationError", "PermissionDeniedError", "BadRequestError", "NotFoundError",
          "UnprocessableEntityError")


@dataclass
class Completion:
    """A model's answer with what it cost."""

    text: str | None
    tool_calls: list[dict[str, Any]]
    model: str
    usage: dict[str, int]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] | None = None
    """The answer as OpenAI chat completion JSON."""
    reasoning: str | None = None


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    """OpenAI ``usage`` JSON as fm_lab's token counts."""
    details = usage.get("prompt_tokens_details") or {}
    out_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": int(usage.get("prompt_tokens") or 0),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cached_tokens": int(details.get("cached_tokens") or 0),
        "reasoning_tokens": int(out_details.get("reasoning_tokens") or 0),
    }


_PRELOAD: list[threading.Thread] = []


def _litellm() -> Any:
    """litellm, imported (after a :func:`preload` under way) with the offline provider."""
    if _PRELOAD and _PRELOAD[0] is not threading.current_thread():
        _PRELOAD[0].join()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    from fm_lab.llm.offline import register

    register()
    return litellm


def _import_quietly() -> None:
    """Import litellm and make one offline call (litellm loads more on its first call)."""
    with contextlib.suppress(Exception):  # the first real call imports again and raises then
        _litellm().completion(model="offline/fm-lab-warm-up",
                              messages=[{"role": "user", "content": "warm up"}])


def preload() -> None:
    """Import litellm (2-4 s) on a daemon thread, once per process, so that the first model
    call finds it loaded: started by ``%load_ext fm_lab`` and by runs of model nodes."""
    with _PRELOAD_LOCK:
        if _PRELOAD:
            return
        thread = threading.Thread(target=_import_quietly, name="fm_lab-litellm", daemon=True)
        thread.start()
        _PRELOAD.append(thread)


class _Route(Protocol):
    """Where a call's answers come from, as OpenAI JSON."""

    async def complete(self, model: str, messages: list[dict[str, Any]],
                       params: dict[str, Any]) -> dict[str, Any]: ...

    async def stream(self, model: str, messages: list[dict[str, Any]],
                     params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]: ...


class _Litellm:
    """Answers through ``litellm.acompletion``."""

    def __init__(self, timeout_s: float) -> None:
        self.litellm = _litellm()
        self.timeout_s = timeout_s

    async def complete(self, model: str, messages: list[dict[str, Any]],
                       params: dict[str, Any]) -> dict[str, Any]:
        response = await self.litellm.acompletion(model=model, messages=messages,
                                                  timeout=self.timeout_s, **params)
        answer: dict[str, Any] = response.model_dump(mode="json")
        return answer

    async def stream(self, model: str, messages: list[dict[str, Any]],
                     params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        chunks = await self.litellm.acompletion(
            model=model, messages=messages, timeout=self.timeout_s, stream=True,
            stream_options={"include_usage": True}, **params)

        async def each() -> AsyncIterator[dict[str, Any]]:
            async for chunk in chunks:
                yield chunk.model_dump(mode="json")

        return each()


def _route(models: list[str], model_params: dict[str, dict[str, Any]] | None,
           params: dict[str, Any], timeout_s: float) -> _Route:
    """The offline provider directly when the chain is offline models with plain
    parameters, else litellm."""
    if not model_params and offline_route.direct(models, params):
        return cast(_Route, offline_route)
    return _Litellm(timeout_s)


async def _with_fallbacks(models: list[str], messages: list[dict[str, Any]], retries: int,
                          backoff_s: float, attempts: list[dict[str, Any]],
                          call: Callable[[str], Awaitable[T]],
                          parent: SpanContext | None, *, kind: str = "llm",
                          span_input: Any = None) -> tuple[T, str, Span]:
    """``call(model)`` for each model in order with its retries; returns the first answer, the
    model that gave it and its open span of ``kind`` under ``parent`` (the caller ends it),
    whose input is ``span_input`` (default: the messages)."""
    last: BaseException | None = None
    shown = {"messages": messages} if span_input is None else span_input
    for name in models:
        provider = name.split("/", 1)[0] if "/" in name else "openai"
        for attempt in range(retries + 1):
            span = Span(parent, name, kind, shown, {"attempt": attempt + 1})
            span.set_usage(model=name, provider=provider)
            try:
                return await call(name), name, span
            except CassetteMiss:
                span.end("error", {"type": "CassetteMiss"})
                raise
            except Exception as exc:
                span.end("error", {"type": type(exc).__name__, "message": str(exc)[:500]})
                attempts.append({"model": name, "error": type(exc).__name__,
                                 "message": str(exc)[:500]})
                last = exc
                names = _names(exc)
                if names & set(_NEXT_MODEL):  # (a BadRequestError too): the next model
                    break
                if names & set(_FATAL):
                    raise NodeError(f"{name}: {type(exc).__name__}: {exc}", kind="provider",
                                    retryable=False, domain="llm") from exc
                if not names & set(_RETRYABLE):
                    break
                if attempt < retries:
                    await asyncio.sleep(_retry_after(exc) or backoff_s * 2 ** attempt)
    if isinstance(last, NodeError) and last.kind == "user":  # bad input: a retry cannot help
        raise NodeError(f"{last} (asked {', '.join(models)})", kind="user", retryable=False,
                        domain=last.domain)
    raise NodeError(
        f"every model failed ({', '.join(models)}); last: "
        f"{type(last).__name__ if last else 'no answer'}: {last}",
        kind="provider", retryable=True, domain="llm")


async def acomplete(messages: list[dict[str, Any]], *, model: str,
                    fallbacks: list[str] | tuple[str, ...] = (), retries: int = 2,
                    backoff_s: float = 0.5, timeout_s: float = 60.0,
                    model_params: dict[str, dict[str, Any]] | None = None,
                    **params: Any) -> Completion:
    """Ask ``model`` (then each of ``fallbacks`` in order); every call is an ``llm`` span
    with model, provider and token usage. ``model_params`` adds parameters per model name
    (e.g. litellm's ``mock_response`` in tests).

    >>> await acomplete([{"role": "user", "content": "hi"}], model="offline/echo")  # doctest: +SKIP
    """
    models = [model, *fallbacks]
    route = _route(models, model_params, params, timeout_s)

    async def call(name: str) -> dict[str, Any]:
        extra = {**params, **(model_params or {}).get(name, {})}
        tape = active()
        if tape is not None:
            key, entry = tape.lookup(name, messages, extra, stream=False)
            if entry is not None:
                recorded: dict[str, Any] = entry["response"]
                return recorded
        response = await route.complete(name, messages, extra)
        if tape is not None:
            tape.record(key, name, messages, response=response)
        return response

    attempts: list[dict[str, Any]] = []
    with standalone():  # a call on its own is a trace of its own
        response, name, span = await _with_fallbacks(models, messages, retries, backoff_s,
                                                     attempts, call, current())
        usage = _usage(response.get("usage") or {})
        message = response["choices"][0]["message"]
        calls = [{"id": c["id"], "name": c["function"]["name"],
                  "arguments": c["function"]["arguments"]}
                 for c in message.get("tool_calls") or []]
        span.set_usage(**cast(dict[str, Any], usage))
        span.output = {"content": message.get("content"), "tool_calls": calls or None}
        span.end()
    attempts.append({"model": name, "ok": True})
    return Completion(message.get("content"), calls, name, usage, attempts, response,
                      message.get("reasoning_content"))


def complete(messages: list[dict[str, Any]], *, model: str, **options: Any) -> Completion:
    """Synchronous :func:`acomplete` (works inside Jupyter's running loop too)."""
    from fm_lab.sync import run_sync

    return run_sync(acomplete(messages, model=model, **options))


async def _replayed(chunks: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for chunk in chunks:
        yield chunk


async def _recording(stream: AsyncIterator[dict[str, Any]],
                     record: Callable[[list[dict[str, Any]]], None]
                     ) -> AsyncIterator[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async for chunk in stream:
        seen.append(chunk)
        yield chunk
    record(seen)


async def astream(messages: list[dict[str, Any]], *, model: str,
                  fallbacks: list[str] | tuple[str, ...] = (), retries: int = 2,
                  backoff_s: float = 0.5, timeout_s: float = 60.0,
                  model_params: dict[str, dict[str, Any]] | None = None,
                  **params: Any) -> AsyncIterator[Chunk]:
    """Stream ``model``'s answer as typed chunks: ``text-delta``/``reasoning`` pieces, one
    ``tool-call`` per complete tool call, then ``finish`` with the whole text and token usage.
    Falls back like :func:`acomplete` until the first chunk arrives; an error after that
    raises (part of the answer was already handed out)."""
    models = [model, *fallbacks]
    route = _route(models, model_params, params, timeout_s)

    async def call(name: str) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any]]:
        extra = {**params, **(model_params or {}).get(name, {})}
        tape = active()
        stream: AsyncIterator[dict[str, Any]]
        if tape is not None:
            key, entry = tape.lookup(name, messages, extra, stream=True)
            if entry is not None:
                stream = _replayed(entry["chunks"])
                return stream, await anext(stream)
        stream = await route.stream(name, messages, extra)
        if tape is not None:
            stream = _recording(stream, lambda chunks: tape.record(
                key, name, messages, chunks=chunks))
        iterator = aiter(stream)
        return iterator, await anext(iterator)

    own = begin()  # a call on its own is a trace of its own
    try:
        attempts: list[dict[str, Any]] = []
        (iterator, first), name, span = await _with_fallbacks(
            models, messages, retries, backoff_s, attempts, call,
            own.context if own is not None else current())
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage: dict[str, int] = {}
        reason = "stop"
        try:
            chunk = first
            while True:
                if chunk.get("usage") is not None:
                    usage = _usage(chunk["usage"])
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if choice.get("finish_reason"):
                        reason = choice["finish_reason"]
                    if delta.get("reasoning_content"):
                        yield ReasoningDelta(delta["reasoning_content"])
                    if delta.get("content"):
                        text.append(delta["content"])
                        yield TextDelta(delta["content"])
                    for piece in delta.get("tool_calls") or []:
                        function = piece.get("function") or {}
                        found = calls.setdefault(piece.get("index") or 0,
                                                 {"id": "", "name": "", "arguments": ""})
                        found["id"] = piece.get("id") or found["id"]
                        found["name"] = function.get("name") or found["name"]
                        found["arguments"] += function.get("arguments") or ""
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
            for index in sorted(calls):
                yield ToolCallChunk(calls[index]["id"], calls[index]["name"],
                                    calls[index]["arguments"] or "{}")
        except BaseException as exc:
            span.end("error", {"type": type(exc).__name__, "message": str(exc)[:500]})
            raise
        whole = "".join(text) or None
        span.set_usage(**cast(dict[str, Any], usage))
        span.output = {"content": whole, "tool_calls": [calls[i] for i in sorted(calls)] or None}
        span.end()
        yield Finish("tool_calls" if calls else reason, whole, name, usage)
    finally:
        if own is not None:
            own.close()


def cost_usd(model: str, usage: dict[str, int]) -> float:
    """What ``usage`` of ``model`` cost at today's prices (0.0 when nobody prices it, e.g.
    offline models); spans are re-priced at query time, this is the figure of the moment."""
    from fm_lab.tracing.pricing import price_of

    price = price_of(model)
    if price is None:
        return 0.0
    cached = usage.get("cached_tokens", 0)
    cache_read = price.cache_read if price.cache_read is not None else price.input
    return ((usage.get("input_tokens", 0) - cached) * price.input + cached * cache_read
            + usage.get("output_tokens", 0) * price.output)
