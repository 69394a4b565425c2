"""What a node sees while it runs: its run, the inputs, state and request context."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fm_lab.engine.runner import Runner


class NodeRunContext:
    """The engine's implementation of :class:`fm_lab.nodes.NodeContext`."""

    __slots__ = ("_runner", "attempt", "node_id", "state_patch")

    def __init__(self, runner: Runner, node_id: str, attempt: int) -> None:
        self._runner = runner
        self.node_id = node_id
        self.attempt = attempt
        self.state_patch: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return self._runner.run_id

    @property
    def inputs(self) -> Mapping[str, Any]:
        """The run's (validated) inputs."""
        return MappingProxyType(self._runner.inputs)

    @property
    def request_context(self) -> dict[str, Any]:
        """Per-run key-value context shared by every node (and later tools and agents)."""
        return self._runner.request_context

    @property
    def abort(self) -> asyncio.Event:
        """Set when the run is cancelled or failing; long nodes should check it."""
        return self._runner.abort

    @property
    def state(self) -> Mapping[str, Any]:
        """The workflow state as this node sees it (its own updates included)."""
        if self.state_patch:
            return MappingProxyType({**self._runner.state, **self.state_patch})
        return MappingProxyType(self._runner.state)

    def set_state(self, updates: Mapping[str, Any]) -> None:
        """Merge ``updates`` into the state; raises StateValidationError if the result does not
        match the state schema. Applied when the node succeeds."""
        merged = {**self._runner.state, **(self.state_patch or {}), **updates}
        self._runner.plan.check_state(merged, self.node_id)
        self.state_patch = {**(self.state_patch or {}), **updates}

    def scope(self) -> dict[str, Any]:
        """The template scope: ``nodes``, ``inputs``, ``state`` and ``run``."""
        return self._runner.scope()
