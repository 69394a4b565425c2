"""The direct route of the offline provider: ``offline/<name>`` models answered without
litellm (whose import costs 2-4 s in a new process).

:mod:`fm_lab.llm.client` takes it when every model of a call's chain is offline and every
parameter is one litellm passes to the offline provider; anything else (``model_params``,
litellm's ``mock_response``, a provider model) goes through litellm, and
``FM_LAB_OFFLINE_VIA_LITELLM=1`` sends offline models through litellm's custom provider too.
Both routes hand the client the same OpenAI JSON (``tests/unit/llm/test_offline_parity.py``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from fm_lab.llm import offline

# what litellm hands the offline provider without complaint (it refuses reasoning_effort)
PARAMS = frozenset({"tools", "tool_choice", "temperature", "top_p", "max_tokens", "stop",
                    "seed", "response_format", "n", "presence_penalty", "frequency_penalty",
                    "parallel_tool_calls", "user", "metadata"})


class OfflineScriptError(Exception):
    """An offline script raised: retried, then fallen back from, like a provider's
    connection error (litellm's route raises its ``APIConnectionError`` there)."""


def direct(models: Iterable[str] | None, params: Mapping[str, Any] | None = None) -> bool:
    """Whether a call of ``models`` (None: not known yet) with ``params`` takes the direct
    route."""
    if models is None or os.environ.get("FM_LAB_OFFLINE_VIA_LITELLM", "") not in ("", "0"):
        return False
    models = list(models)
    return (bool(models) and all(m.startswith("offline/") for m in models)
            and PARAMS.issuperset(params or {}))


def _answered(model: str, build: Any, messages: list[dict[str, Any]],
              params: Mapping[str, Any]) -> Any:
    try:
        return build(model, messages, params.get("tools"))
    except Exception as exc:
        raise OfflineScriptError(f"{model}: {type(exc).__name__}: {exc}") from exc


async def complete(model: str, messages: list[dict[str, Any]],
                   params: Mapping[str, Any]) -> dict[str, Any]:
    """The script's answer (OpenAI chat completion JSON)."""
    answer: dict[str, Any] = _answered(model, offline.completion, messages, params)
    return answer


async def stream(model: str, messages: list[dict[str, Any]],
                 params: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """The script's answer as OpenAI stream chunks (JSON)."""
    chunks: list[dict[str, Any]] = _answered(model, offline.stream, messages, params)

    async def each() -> AsyncIterator[dict[str, Any]]:
        for chunk in chunks:
            yield chunk

    return each()
