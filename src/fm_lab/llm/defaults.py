"""Which model to use when none is named."""

from __future__ import annotations

import os


def default_model() -> str:
    """``$FM_LAB_MODEL`` (any litellm model name, with its key) or the offline echo model."""
    return os.environ.get("FM_LAB_MODEL", "offline/echo")
