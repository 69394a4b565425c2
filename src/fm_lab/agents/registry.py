"""Agents by name: ``register(agent)`` here, ``get(name)`` anywhere (also ``module:attr``, so
another process — a resume, the CLI — finds agents defined in an importable module, when the
execution policy in force allows importing it: see :mod:`fm_lab.security`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from fm_lab.security.functions import import_object

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


def get(ref: str) -> Agent:
    """The agent registered as ``ref``, or the one at the import path ``module:attr``."""
    from fm_lab.agents.agent import Agent

    if ref in _AGENTS:
        return _AGENTS[ref]
    if ":" not in ref:
        known = ", ".join(registered()) or "none"
        raise LookupError(f"no agent named {ref!r} in this process (registered: {known}); "
                          "register it with fm_lab.agents.register or name it as module:attr")
    found = import_object(ref, "agent")
    if callable(found) and not isinstance(found, Agent):
        found = found()
    if not isinstance(found, Agent):
        raise LookupError(f"{ref!r} is a {type(found).__name__}, not an Agent")
    return found
