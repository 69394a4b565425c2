"""Durable agent turns: an adapter that runs an :class:`Agent`'s turn as a one-node workflow
run on the engine (as pydantic-ai's ``TemporalAgent`` wraps its agent), so model answers and
tool results are journaled steps and a tool may suspend the turn for a person.

This is the agents module that imports the engine (lazily: importing it costs nothing);
``agents/agent.py`` does not. ``fm_lab.agents`` imports it, which installs
:func:`durable_turn` as :attr:`Agent.durable_turn`: ``Agent(..., durable=True).generate()``
and ``agent.generate(..., durable=True)`` run through it.

>>> from fm_lab.agents import Agent
>>> DurableAgent(Agent("helper", model="offline/echo")).generate("hi").text  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fm_lab.agents.agent import Agent, Message
from fm_lab.agents.registry import register
from fm_lab.agents.result import AgentResult
from fm_lab.sync import run_sync

if TYPE_CHECKING:
    from fm_lab.store.base import RunStore


class DurableAgent:
    """``agent`` whose turns are workflow runs in ``store`` (default: the default store)."""

    def __init__(self, agent: Agent, *, store: RunStore | None = None) -> None:
        self.agent = agent
        self.store = store

    def __repr__(self) -> str:
        return f"DurableAgent({self.agent!r})"

    def workflow(self) -> dict[str, Any]:
        """The one-node workflow a turn runs (its ``agent`` node finds the agent by ref)."""
        ref = self.agent.ref
        if ref == self.agent.name:  # not importable (a notebook, __main__): resumable here
            register(self.agent, replace=True)
        return {"id": f"agent_{self.agent.name}", "nodes": {"agent": {
            "type": "agent", "config": {
                "agent": ref, "prompt": "{{ inputs.message }}",
                "thread_id": "{{ inputs.thread_id }}",
                "resource_id": "{{ inputs.resource_id }}"}}}}

    async def agenerate(self, message: Message, *, thread_id: str | None = None,
                        resource_id: str | None = None,
                        request_context: Mapping[str, Any] | None = None,
                        store: RunStore | None = None) -> AgentResult:
        """One turn as a run: finished, or ``status="suspended"`` with the ``run_id`` to
        ``fm_lab.resume``."""
        from fm_lab.engine.api import arun

        run = await arun(self.workflow(), {"message": message, "thread_id": thread_id,
                                           "resource_id": resource_id},
                         store=store or self.store,
                         request_context=dict(request_context or {}))
        return AgentResult.from_run(run)

    def generate(self, message: Message, **kwargs: Any) -> AgentResult:
        """Synchronous :meth:`agenerate` (works inside Jupyter's running loop too)."""
        return run_sync(self.agenerate(message, **kwargs))


async def durable_turn(agent: Agent, message: Message, *, thread_id: str | None,
                       resource_id: str | None, request_context: Mapping[str, Any] | None,
                       store: RunStore | None) -> AgentResult:
    """:attr:`Agent.durable_turn`: ``agent``'s turn through a :class:`DurableAgent`."""
    return await DurableAgent(agent).agenerate(
        message, thread_id=thread_id, resource_id=resource_id,
        request_context=request_context, store=store)


Agent.durable_turn = durable_turn
