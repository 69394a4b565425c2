"""Agents by name: ``register(agent)`` here, ``get(name)`` anywhere (also ``module:attr``, so
another process — a resume, the CLI — finds agents defined in an importable module)."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fm_lab.agents.agent import Agent

_AGENTS: dict[str, Agent] = {}
_LOCK = threading.Lock()


def register(agent: Agent, *, name: str | None = None, replace: bool = False) -> Agent:
    """Make ``agent`` findable by ``name`` (default: its own); returns it (a decorator-friendly
    form). Registering another agent under a taken name needs ``replace=True``."""
    key = name or agent.name
    with _LOCK:
        known = _AGENTS.get(key)
        if known is not None and known is not agent and not replace:
            raise ValueError(f"an agent named {key!r} is already registered; pass replace=True")
        _AGENTS[key] = agent
    return agent


def registered() -> list[str]:
    """The names registered in this process."""
    return sorted(_AGENTS)


def import_object(path: str) -> Any:
    """The object at ``module:attr`` (``module:attr.sub`` works too)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{path!r} is not an import path of the form module:attr")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import {module_name!r} for {path!r}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(target, part):
            raise LookupError(f"{module_name!r} has no attribute {attr!r} (from {path!r})")
        target = getattr(target, part)
    return target


def get(ref: str) -> Agent:
    """The agent registered as ``ref``, or the one at the import path ``module:attr``."""
    from fm_lab.agents.agent import Agent

    if ref in _AGENTS:
        return _AGENTS[ref]
    if ":" not in ref:
        known = ", ".join(registered()) or "none"
        raise LookupError(f"no agent named {ref!r} in this process (registered: {known}); "
                          "register it with fm_lab.agents.register or name it as module:attr")
    found = import_object(ref)
    if callable(found) and not isinstance(found, Agent):
        found = found()
    if not isinstance(found, Agent):
        raise LookupError(f"{ref!r} is a {type(found).__name__}, not an Agent")
    return found
