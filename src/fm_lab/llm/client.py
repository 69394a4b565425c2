"""One async entry over ``litellm.acompletion``: spans with usage, an ordered fallback chain
with retries per model, and clear errors for what must not fall back."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

from fm_lab.exceptions import NodeError
from fm_lab.tracing.spans import span

# move on to the next model for these (after this model's retries, but at once for a full
# context window); never for authentication or bad requests, which fail clearly
_RETRYABLE = ("RateLimitError", "ServiceUnavailableError", "InternalServerError", "Timeout",
              "APIConnectionError", "APIError")
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
    raw: Any = None


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


def _usage(response: Any) -> dict[str, int]:
    usage = getattr(response, "usage", None)
    if usage is None:
        return {}
    details = getattr(usage, "prompt_tokens_details", None)
    out_details = getattr(usage, "completion_tokens_details", None)
    return {
        "input_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
        "output_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
        "cached_tokens": int(getattr(details, "cached_tokens", 0) or 0),
        "reasoning_tokens": int(getattr(out_details, "reasoning_tokens", 0) or 0),
    }


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
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    from fm_lab.llm.offline import register

    register()
    attempts: list[dict[str, Any]] = []
    last: BaseException | None = None
    for name in [model, *fallbacks]:
        provider = name.split("/", 1)[0] if "/" in name else "openai"
        for attempt in range(retries + 1):
            with span(name, kind="llm", input={"messages": messages}) as call:
                call.set_attribute("attempt", attempt + 1)
                try:
                    extra = {**params, **(model_params or {}).get(name, {})}
                    response = await litellm.acompletion(model=name, messages=messages,
                                                         timeout=timeout_s, **extra)
                except Exception as exc:
                    names = _names(exc)
                    attempts.append({"model": name, "error": type(exc).__name__,
                                     "message": str(exc)[:500]})
                    call.set_usage(model=name, provider=provider)
                    call.status = "error"
                    last = exc
                    if names & set(_NEXT_MODEL):  # (a BadRequestError too): the next model
                        break
                    if names & set(_FATAL):
                        raise NodeError(f"{name}: {type(exc).__name__}: {exc}", kind="provider",
                                        retryable=False, domain="llm") from exc
                    if not names & set(_RETRYABLE):
                        break
                    if attempt < retries:
                        await asyncio.sleep(_retry_after(exc) or backoff_s * 2 ** attempt)
                    continue
                usage = _usage(response)
                message = response.choices[0].message
                calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                         for c in (getattr(message, "tool_calls", None) or [])]
                call.set_usage(model=name, provider=provider, **usage)
                call.output = {"content": message.content, "tool_calls": calls or None}
                attempts.append({"model": name, "ok": True})
                return Completion(message.content, calls, name, usage, attempts, response)
    raise NodeError(
        f"every model failed ({', '.join([model, *fallbacks])}); last: "
        f"{type(last).__name__ if last else 'no answer'}: {last}",
        kind="provider", retryable=True, domain="llm")
