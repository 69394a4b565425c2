"""Token counts of the offline models: words and punctuation marks.

An offline model has no tokenizer of its own. Its usage counts every run of letters and digits
and every other non-space character as one token, plus 3 per message (role and framing, as
OpenAI's chat format adds) and 3 to prime the reply: deterministic, instant and of the order of
a BPE count for English text. It is not tiktoken's count (loading an encoding costs ~0.5 s on
first use); real providers report their own usage.

>>> count("Hi! How can I help?")
7
"""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")
PER_MESSAGE = 3
PER_REPLY = 3


def count(text: str | None) -> int:
    """Tokens in ``text``: runs of word characters and single other non-space characters."""
    return len(_TOKEN.findall(text)) if text else 0


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else json.dumps(content) if content else ""


def count_calls(calls: list[dict[str, Any]] | None) -> int:
    """Tokens of OpenAI tool calls: each function's name and arguments, plus framing."""
    return sum(PER_MESSAGE + count(c["function"]["name"]) + count(c["function"]["arguments"])
               for c in calls or [])


def count_messages(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens of OpenAI chat ``messages``."""
    return PER_REPLY + sum(
        PER_MESSAGE + count(str(m.get("role", ""))) + count(_text(m.get("content")))
        + count(m.get("name")) + count_calls(m.get("tool_calls")) for m in messages)
