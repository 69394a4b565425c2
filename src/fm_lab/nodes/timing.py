"""Durable waits: ``sleep`` and ``sleep_until`` (a resumed run sleeps only the time left).

A long wait (a minute or more, or ``suspend: true``) suspends the run until it is due, so no
process has to stay up for it: a timer in any live process (:mod:`fm_lab.timers`) or
``fm-lab recover`` resumes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fm_lab.nodes.base import NodeContext, NodeType


def _suspend_field() -> Any:
    return Field(None, description="Suspend the run while waiting (a timer resumes it when "
                 "due). Default: when the wait is 60 s or longer.")


class SleepNode(NodeType):
    """Waits ``seconds``; the wake-up time is journaled, so a restart sleeps the rest."""
    cacheable = False

    type_name = "sleep"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        seconds: float = Field(ge=0)
        suspend: bool | None = _suspend_field()

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        await ctx.sleep(self.config.seconds, suspend=self.config.suspend)
        return {"slept_s": self.config.seconds}


class SleepUntilNode(NodeType):
    """Waits until ``until`` (ISO 8601 text, a datetime, or a UNIX time)."""
    cacheable = False

    type_name = "sleep_until"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        until: dt.datetime | float
        suspend: bool | None = _suspend_field()

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        until = self.config.until
        if isinstance(until, dt.datetime):
            if until.tzinfo is None:
                until = until.replace(tzinfo=dt.UTC)
            stamp = until.timestamp()
        else:
            stamp = float(until)
        await ctx.sleep_until(stamp, suspend=self.config.suspend)
        return {"until": dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat()}
