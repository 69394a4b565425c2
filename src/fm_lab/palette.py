"""The colours of run statuses and node types, shared by every view (``palette.json``; the
canvas's JavaScript reads the same file)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

PALETTE_FILE = Path(__file__).with_name("palette.json")


@cache
def _palette() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PALETTE_FILE.read_text(encoding="utf-8"))
    return data


def status_colour(status: str) -> str:
    """The colour of a node or run status (unknown statuses look idle)."""
    statuses: dict[str, str] = _palette()["statuses"]
    return statuses.get(status, statuses["idle"])


def type_colour(node_type: str) -> str:
    """The colour of a node type's family (third-party types get the generic colour)."""
    for family in _palette()["families"].values():
        if node_type in family["types"]:
            return str(family["colour"])
    return str(_palette()["other_type"])


def icon_path(node_type: str) -> str | None:
    """SVG path data (viewBox 0 0 16 16) of a node type's icon, if it has one."""
    icons: dict[str, str] = _palette().get("icons", {})
    return icons.get(node_type)
