"""An MCP server's tool as an fm_lab agent tool: the server's JSON Schema is the tool's
parameters and checks a model's arguments before anything is sent (invalid ones go back to
the model, as for Python tools)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from fm_lab.agents.context import ToolContext
from fm_lab.agents.tools import Tool, decode_arguments

if TYPE_CHECKING:
    from mcp_types import Tool as McpToolInfo

    from fm_lab.mcp.client import McpServer


class _Arguments(BaseModel):
    """Arguments already checked against the server's schema."""

    model_config = ConfigDict(extra="allow")


class McpTool(Tool):
    """One tool of an MCP server; made by :meth:`McpServer.tools`."""

    def __init__(self, server: McpServer, remote_name: str, name: str, description: str,
                 input_schema: dict[str, Any]) -> None:
        super().__init__(name, description, self._invoke, _Arguments,
                         span_attributes={**server.span_attributes(),
                                          "mcp.tool": remote_name})
        self.server, self.remote_name, self.input_schema = server, remote_name, input_schema
        from jsonschema.validators import validator_for

        validator = validator_for(input_schema)
        validator.check_schema(input_schema)
        self._validator = validator(input_schema)

    @classmethod
    def from_mcp(cls, server: McpServer, info: McpToolInfo, prefix: str = "") -> McpTool:
        """The tool the server lists as ``info``."""
        schema = dict(info.input_schema or {"type": "object", "properties": {}})
        return cls(server, info.name, prefix + info.name,
                   info.description or info.title or f"{info.name} ({server.name})", schema)

    def parameters(self) -> dict[str, Any]:
        return self.input_schema

    def parse(self, arguments: str | dict[str, Any]) -> BaseModel:
        """Arguments checked against the server's schema (every problem at once)."""
        decoded = decode_arguments(arguments)
        if not isinstance(decoded, dict):
            raise ValueError("the arguments must be a JSON object")
        problems = sorted(self._validator.iter_errors(decoded), key=lambda e: list(e.path))
        if problems:
            raise ValueError("; ".join(
                f"{'.'.join(str(p) for p in e.path) or 'arguments'}: {e.message}"
                for e in problems))
        return _Arguments(**decoded)

    async def call(self, args: BaseModel, context: ToolContext | None = None) -> Any:
        return await self._invoke(**(args.model_extra or {}))

    async def _invoke(self, **arguments: Any) -> Any:
        # the agent has opened this call's tool span (with the server's attributes)
        return await self.server.acall(self.remote_name, arguments, traced=False)
