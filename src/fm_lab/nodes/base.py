"""The node type contract: a pydantic ``Config`` and ``run(ctx, inputs) -> output``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict


class NoConfig(BaseModel):
    """Config of a node type that takes none."""

    model_config = ConfigDict(extra="forbid")


class NodeContext(Protocol):
    """What a running node sees of its run (the engine provides it)."""

    run_id: str
    node_id: str
    attempt: int
    inputs: Mapping[str, Any]
    request_context: dict[str, Any]
    abort: asyncio.Event

    @property
    def state(self) -> Mapping[str, Any]: ...

    def set_state(self, updates: Mapping[str, Any]) -> None: ...

    def scope(self) -> dict[str, Any]: ...


class NodeType:
    """Base class of node types.

    Subclass it, give it a ``type_name`` and a pydantic ``Config`` and implement ``run`` (sync or
    async); register it with :func:`fm_lab.register_node`::

        @fm_lab.register_node
        class Shout(NodeType):
            type_name = "shout"
            class Config(BaseModel):
                text: str
            async def run(self, ctx, inputs):
                return self.config.text.upper()
    """

    type_name: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]] = NoConfig
    idempotent: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        """Compute the node's output from its upstream outputs (``inputs``, keyed by node id)."""
        raise NotImplementedError

    @classmethod
    def output_handles(cls, config: dict[str, Any]) -> list[str] | None:
        """Named routes this node can take (None: every outgoing edge is followed)."""
        return None

    @classmethod
    def taken_handles(cls, output: Any) -> set[str] | None:
        """The routes a finished node took (None: every outgoing edge is followed)."""
        return None

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of this type's config (forms in the graph editor use it)."""
        schema = cls.Config.model_json_schema()
        schema.setdefault("description", cls.description or (cls.__doc__ or "").strip())
        return schema
