"""The node type contract: a pydantic ``Config`` and ``run(ctx, inputs) -> output``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from fm_lab.security.functions import Reference
from fm_lab.spec.templates import is_template

if TYPE_CHECKING:
    from fm_lab.spec.validate import NodeTypeLookup


def plain_names(*values: Any) -> list[str] | None:
    """The names in ``values`` (strings, or lists of them), or None when one is a template
    or not a string: what a node's config names, known before it runs."""
    names = [v for value in values for v in (value if isinstance(value, list) else [value])]
    return names if all(isinstance(n, str) and not is_template(n) for n in names) else None


class NoConfig(BaseModel):
    """Config of a node type that takes none."""

    model_config = ConfigDict(extra="forbid")


class NodeContext(Protocol):
    """What a running node sees of its run (the engine provides it)."""

    @property
    def run_id(self) -> str: ...

    @property
    def node_id(self) -> str: ...

    @property
    def attempt(self) -> int: ...

    @property
    def inputs(self) -> Mapping[str, Any]: ...

    @property
    def request_context(self) -> dict[str, Any]: ...

    @property
    def abort(self) -> asyncio.Event: ...

    @property
    def state(self) -> Mapping[str, Any]: ...

    def set_state(self, updates: Mapping[str, Any]) -> None: ...

    def scope(self) -> dict[str, Any]: ...

    @property
    def path(self) -> str:
        """This execution's stable path id (``node``, ``loop[3]``, ``loop[3]/approve``)."""
        ...

    @property
    def resume_data(self) -> Any: ...

    async def suspend(
        self,
        payload: Any = None,
        *,
        label: str | None = None,
        schema: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        on_timeout: str = "fail",
        default: Any = None,
        assignees: Sequence[str] = (),
        roles: Sequence[str] = (),
        payload_schema: dict[str, Any] | None = None,
    ) -> Any: ...

    async def step(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any: ...

    async def sleep(self, seconds: float, *, suspend: bool | None = None) -> None: ...

    async def sleep_until(self, timestamp: float, *, suspend: bool | None = None) -> None: ...

    async def run_body(
        self,
        body: Mapping[str, Any],
        key: str,
        *,
        scope: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> Any: ...

    async def run_child(self, workflow: Any, inputs: Mapping[str, Any]) -> Any: ...

    def commit(self) -> None: ...

    def evaluate(self, value: Any, scope: Mapping[str, Any] | None = None) -> Any:
        """Render the templates in ``value`` in the engine's sandbox against the run's
        scope (``nodes``, ``inputs``, ``state``, ``run``) plus ``scope``."""
        ...

    def add_event(self, name: str, **attributes: Any) -> None: ...

    def progress(self, total: int) -> None:
        """Announce how many items this node will work through."""
        ...


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
    cacheable: ClassVar[bool] = True
    """Whether a run with the cache on may reuse a stored result instead of running (False for
    side effects, waits and humans)."""
    calls_models: ClassVar[bool] = False
    """Whether the type asks models (through litellm): a run of such nodes imports litellm on a
    background thread as it starts, beside the store and the plan."""
    description: ClassVar[str] = ""
    raw_fields: ClassVar[frozenset[str]] = frozenset()
    """Config keys the engine passes through unrendered (bodies rendered per item)."""
    resume_schema: ClassVar[type[BaseModel] | dict[str, Any] | None] = None
    """What ``fm_lab.resume`` data must look like for this node type."""
    payload_schema: ClassVar[type[BaseModel] | dict[str, Any] | None] = None
    """What this node type shows while suspended (its ``ctx.suspend`` payload): checked when
    it suspends (a payload that does not match fails the node), stored with the suspension and
    used by the widget's form to show the payload."""

    def __init__(self, config: BaseModel) -> None:
        self.config: Any = config  # the type's Config instance

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        """Compute the node's output from its upstream outputs (``inputs``, keyed by node id)."""
        raise NotImplementedError

    def cache_version(self) -> str:
        """Part of the cache key beyond config and inputs (e.g. the code a node calls)."""
        return ""

    @classmethod
    def output_handles(cls, config: dict[str, Any]) -> list[str] | None:
        """Named routes this node can take (None: every outgoing edge is followed)."""
        return None

    @classmethod
    def taken_handles(cls, output: Any) -> set[str] | None:
        """The routes a finished node took (None: every outgoing edge is followed)."""
        return None

    @classmethod
    def check(cls, config: dict[str, Any], location: str,
              registry: NodeTypeLookup | None = None) -> list[Any]:
        """Extra validation issues of a config (e.g. of a nested body, whose node types are
        looked up in ``registry``: the one the workflow is validated against); none by
        default."""
        return []

    @classmethod
    def references(cls, config: dict[str, Any]) -> list[Reference]:
        """What ``config`` names to be imported or called (functions, tools, agents): each is
        checked against the execution policy before the run (see :mod:`fm_lab.security`);
        none by default."""
        return []

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[str] | None:
        """The models a node with this (unrendered) ``config`` asks, when known before it
        runs (None: not known, e.g. a templated model): a run preloads litellm unless every
        node's models are offline ones."""
        return None if cls.calls_models else []

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of this type's config (forms in the graph editor use it)."""
        schema = cls.Config.model_json_schema()
        schema.setdefault("description", cls.description or (cls.__doc__ or "").strip())
        return schema
