"""Nodes that shape data: ``template`` (Jinja2) and ``transform`` (JMESPath)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fm_lab.nodes.base import NodeContext, NodeType


class TemplateNode(NodeType):
    """Renders ``template`` (sandboxed Jinja2, rendered by the engine with nodes/inputs/state)."""

    type_name = "template"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        template: Any = Field(description="Text with {{ ... }}; a whole expression keeps its type.")
        parse: Literal["text", "json"] = Field("text", description="Parse the result as JSON.")

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        value = self.config.template
        if self.config.parse == "json" and isinstance(value, str):
            return json.loads(value)
        return value


class TransformNode(NodeType):
    """Applies a JMESPath ``expression`` to ``data`` (default: {nodes, inputs, state}).

    Example: ``expression: "nodes.fetch.output.items[?price > `10`].name"``.
    """

    type_name = "transform"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        expression: str = Field(description="A JMESPath expression.")
        data: Any = Field(None, description="What to search; default the run scope.")

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        import jmespath

        data = self.config.data
        if data is None:
            data = ctx.scope()
        return jmespath.search(self.config.expression, data)
