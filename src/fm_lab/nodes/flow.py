"""Nodes that move data through a graph: input, output, merge."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fm_lab.nodes.base import NodeContext, NodeType


class InputNode(NodeType):
    """Emits the run's inputs (all of them, or the listed ``fields``)."""

    type_name = "input"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        fields: list[str] | None = Field(None, description="Input keys to pass on (default all).")

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        data = dict(ctx.inputs)
        fields = self.config.fields
        return data if fields is None else {key: data.get(key) for key in fields}


class OutputNode(NodeType):
    """Names a result of the workflow: ``value`` (a template) or its upstream outputs."""

    type_name = "output"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str | None = Field(None, description="Key in run.outputs (default: node id).")
        value: Any = Field(None, description="The output; default: the single upstream output.")

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        value = self.config.value
        if value is not None:
            return value
        if len(inputs) == 1:
            return next(iter(inputs.values()))
        return inputs


class MergeNode(NodeType):
    """Joins branches: runs once every incoming path has finished or been skipped."""

    type_name = "merge"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        mode: Literal["dict", "list", "first"] = Field(
            "dict",
            description="dict: {node: output}; list: outputs in edge order; "
            "first: the first output that arrived from a taken path",
        )

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        mode = self.config.mode
        if mode == "dict":
            return dict(inputs)
        values = list(inputs.values())
        if mode == "list":
            return values
        return values[0] if values else None


class LogNode(NodeType):
    """Writes ``message`` (and ``data``) as an event on this node's span and to the
    ``fm_lab.workflow`` logger; outputs what it logged."""
    cacheable = False

    type_name = "log"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        message: str
        level: Literal["debug", "info", "warning", "error"] = "info"
        data: Any = None

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        import logging

        config = self.config
        ctx.add_event("log", level=config.level, message=config.message, data=config.data)
        logging.getLogger("fm_lab.workflow").log(
            logging.getLevelName(config.level.upper()), "%s [%s] %s", ctx.run_id, ctx.path,
            config.message)
        return {"message": config.message, "level": config.level, "data": config.data}
