"""Journaled agent steps: model answers, tool results and the workflow state updates tools
make, recorded through a node's ``ctx.step`` so a re-executed node replays them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from fm_lab.agents.context import Durable

# state updates made inside a journaled step, so a replayed step applies them again
_CAPTURE: ContextVar[dict[str, Any] | None] = ContextVar("fm_lab_agent_state", default=None)


def state_setter(durable: Durable) -> Callable[[Mapping[str, Any]], None]:
    """``durable.set_state`` that also records the updates for the enclosing step."""

    def set_state(updates: Mapping[str, Any]) -> None:
        durable.set_state(updates)
        captured = _CAPTURE.get()
        if captured is not None:
            captured.update(updates)

    return set_state


async def journaled(durable: Durable, name: str, fn: Callable[[], Any]) -> Any:
    """``durable.step(name, fn)``, also journaling the workflow state updates ``fn`` makes:
    when the step is replayed (not run) they are applied again."""
    captured: dict[str, Any] = {}
    ran = False

    async def run() -> dict[str, Any]:
        nonlocal ran
        ran = True
        token = _CAPTURE.set(captured)
        try:
            value = fn()
            if inspect.isawaitable(value):
                value = await value
        finally:
            _CAPTURE.reset(token)
        return {"value": value, "state": captured or None}

    done = await durable.step(name, run)
    if done["state"]:
        if not ran:
            durable.set_state(done["state"])
        outer = _CAPTURE.get()
        if outer is not None:
            outer.update(done["state"])
    return done["value"]
