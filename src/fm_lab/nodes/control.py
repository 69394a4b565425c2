"""Nodes that steer a run: ``branch`` and ``set_state``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fm_lab.exceptions import NodeError
from fm_lab.nodes.base import NodeContext, NodeType


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handle: str = Field(description="Name of the route; edges pick it with source_handle.")
    when: Any = Field(description="A template such as '{{ inputs.amount > 100 }}'.")


class BranchNode(NodeType):
    """Routes to named handles: the first route whose ``when`` is truthy (or all of them with
    ``mode: all``), else ``default``. Untaken paths are skipped, not failed."""

    type_name = "branch"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        routes: list[Route] = Field(min_length=1)
        default: str | None = Field(None, description="Handle taken when no route matches.")
        mode: Literal["first", "all"] = "first"

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config
        taken = [r.handle for r in config.routes if r.when]
        if config.mode == "first":
            taken = taken[:1]
        if not taken and config.default:
            taken = [config.default]
        return {"route": taken[0] if taken else None, "routes": taken}

    @classmethod
    def output_handles(cls, config: dict[str, Any]) -> list[str] | None:
        handles = [r.get("handle") for r in config.get("routes", []) if isinstance(r, dict)]
        if config.get("default"):
            handles.append(config["default"])
        return [h for h in handles if isinstance(h, str)]

    @classmethod
    def taken_handles(cls, output: Any) -> set[str] | None:
        return set(output.get("routes", [])) if isinstance(output, dict) else set()


class SetStateNode(NodeType):
    """Merges ``values`` into the run's state (validated against the state schema)."""

    type_name = "set_state"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        values: dict[str, Any] = Field(description="Keys to set; values may be templates.")

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        ctx.set_state(self.config.values)
        return dict(self.config.values)


class RouterNode(BranchNode):
    """Routes to the first route whose ``when`` is truthy, else ``default``."""

    type_name = "router"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        routes: list[Route] = Field(min_length=1)
        default: str | None = Field(None, description="Handle taken when no route matches.")
        mode: Literal["first"] = "first"


class FailNode(NodeType):
    """Fails the run with ``message`` (a user error, never retried)."""
    cacheable = False

    type_name = "fail"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        message: str

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        raise NodeError(self.config.message, kind="user", retryable=False)
