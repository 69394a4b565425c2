"""Store timings read from the environment."""

from __future__ import annotations

import os

from fm_lab.store.errors import StoreError


def seconds(name: str, default: float, maximum: float = float("inf")) -> float:
    """``$name`` as a number of seconds from 0 to ``maximum`` (``default`` when unset or
    blank); raises :class:`StoreError` naming the variable otherwise."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= maximum:
        upper = "" if maximum == float("inf") else f" from 0 to {maximum:g}"
        raise StoreError(f"{name}={text!r} is not a number of seconds{upper}")
    return value
