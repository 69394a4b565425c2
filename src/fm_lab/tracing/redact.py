"""Masking secrets before anything is stored or exported: API keys, bearer tokens,
``Authorization``/``Cookie`` headers, values marked with :func:`secret`, and your patterns."""

from __future__ import annotations

import os
import re
import threading
from typing import Any

MASK = "[REDACTED]"
SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "api_key",
        "apikey",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "access_token",
        "refresh_token",
        "id_token",
        "private_key",
        "x-auth-token",
    }
)
DEFAULT_PATTERNS = (
    r"sk-[A-Za-z0-9_\-]{16,}",  # OpenAI / Anthropic style keys
    r"\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+[A-Za-z0-9._~+/=\-]{8,}",
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"xox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack tokens
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API keys
)
_ENV_SECRET = re.compile(r"(_API_KEY|_SECRET|_TOKEN|PASSWORD)$")


class Secret(str):
    """A string marked secret: it prints masked and is masked wherever fm_lab stores it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"


class Redactor:
    """Replaces secrets in strings and in values of secret-named keys, recursively."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._patterns: list[str] = list(DEFAULT_PATTERNS)
        for name, value in os.environ.items():
            if _ENV_SECRET.search(name.upper()) and len(value) >= 8:
                self._values.add(value)
        self._compile()

    def _compile(self) -> None:
        literal = [re.escape(v) for v in sorted(self._values, key=len, reverse=True)]
        self._regex = re.compile("|".join([*literal, *self._patterns]))

    def add_secret(self, value: str) -> None:
        """Mask ``value`` wherever it appears from now on."""
        if len(value) < 4:
            raise ValueError("a secret shorter than 4 characters would mask too much")
        with self._lock:
            if value in self._values:  # known (a connection loaded again): no recompile
                return
            self._values.add(str(value))
            self._compile()

    def add_pattern(self, pattern: str) -> None:
        """Mask every match of the regular expression ``pattern`` from now on."""
        re.compile(pattern)
        with self._lock:
            self._patterns.append(pattern)
            self._compile()

    def text(self, value: str) -> str:
        """``value`` with every secret replaced by the mask."""
        return self._regex.sub(MASK, value)

    def __call__(self, value: Any) -> Any:
        """A copy of ``value`` with secrets masked (only copied where something changed)."""
        if isinstance(value, str):
            return MASK if isinstance(value, Secret) else self._regex.sub(MASK, value)
        if isinstance(value, dict):
            changed = False
            out = {}
            for key, item in value.items():
                if isinstance(key, str) and key.lower() in SECRET_KEYS and item:
                    new: Any = MASK
                else:
                    new = self(item)
                changed = changed or new is not item
                out[key] = new
            return out if changed else value
        if isinstance(value, list | tuple):
            items = [self(item) for item in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                return items
            return value
        if value is None or isinstance(value, int | float | bool):
            return value
        # pydantic models, dataclasses, DataFrames, sets...: redact the JSON form the codec
        # would store (only when something in it is a secret)
        import json

        from fm_lab.store.codec import NotSerialisableError, dumps

        try:
            plain = json.loads(dumps(value))
        except (NotSerialisableError, ValueError):
            return value
        masked = self(plain)
        return value if masked is plain else masked


_REDACTOR: Redactor | None = None


def redactor() -> Redactor:
    """The process-wide redactor."""
    global _REDACTOR
    if _REDACTOR is None:
        _REDACTOR = Redactor()
    return _REDACTOR


def secret(value: str) -> Secret:
    """Mark ``value`` secret: it is masked in everything fm_lab stores or exports.

    >>> key = secret("my-very-private-key")
    >>> redactor()({"note": "key is my-very-private-key"})
    {'note': 'key is [REDACTED]'}
    """
    redactor().add_secret(value)
    return Secret(value)


def redact_pattern(pattern: str) -> None:
    """Also mask every match of ``pattern`` (a regular expression)."""
    redactor().add_pattern(pattern)
