"""The ``mcp_tool`` node: call one tool of an MCP server from a workflow."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fm_lab.exceptions import NodeError
from fm_lab.mcp.client import McpError, McpServer, McpToolError, get_server, server
from fm_lab.nodes.base import NodeContext, NodeType
from fm_lab.security.policy import PolicyError, current_policy
from fm_lab.spec.errors import ValidationIssue

if TYPE_CHECKING:
    from fm_lab.spec.validate import NodeTypeLookup

_NO_COMMAND = ("an mcp_tool node may not start a command under the restricted policy: "
               "register the server in trusted code (fm_lab.mcp.server)")


class McpToolNode(NodeType):
    """Calls ``tool`` of an MCP server with ``arguments`` (templates) and outputs its result
    (the structured content when the tool gives one, else its text).

    ```yaml
    total:
      type: mcp_tool
      config:
        server: calc                 # registered with fm_lab.mcp.server("calc", ...)
        tool: add
        arguments: {a: "{{ inputs.a }}", b: 2}
    issues:
      type: mcp_tool
      config:
        url: https://mcp.example.com/mcp   # or command: [python, my_server.py]
        connection: github                 # a named connection's credentials
        tool: list_issues
        arguments: {repo: "{{ inputs.repo }}"}
    ```
    Arguments are checked against the tool's input schema before the call (a ``validation``
    error naming every problem). Under the restricted policy a node may not start a command
    (``command:``) and its ``url`` must be an address the policy lets ``http`` nodes reach.
    """

    type_name = "mcp_tool"
    cacheable = False
    description = "Calls one tool of an MCP server (stdio or streamable HTTP)."

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        server: str | None = Field(None, description="A server registered with "
                                   "fm_lab.mcp.server(name, ...).")
        command: list[str] | None = Field(None, description="Or: start this command as a "
                                          "stdio server (trusted policy only).")
        url: str | None = Field(None, description="Or: a streamable-HTTP server's URL.")
        connection: str | None = Field(None, description="A named connection (inline "
                                       "servers): its credentials go with the requests.")
        tool: str = Field(description="The tool to call.")
        arguments: dict[str, Any] = Field(default_factory=dict,
                                          description="The tool's arguments (templates).")
        timeout_s: float = Field(60.0, gt=0, description="Seconds allowed for the call.")

        @model_validator(mode="after")
        def _one_server(self) -> McpToolNode.Config:
            given = [k for k in ("server", "command", "url") if getattr(self, k)]
            if len(given) != 1:
                raise ValueError("give exactly one of server (a registered name), command "
                                 "or url")
            if self.server and self.connection:
                raise ValueError("connection belongs to an inline server (command or url); "
                                 "a registered server has its own")
            return self

    @classmethod
    def check(cls, config: dict[str, Any], location: str,
              registry: NodeTypeLookup | None = None) -> list[Any]:
        """Under the restricted policy an inline ``command`` makes the workflow invalid."""
        if config.get("command") is not None and current_policy().restricted:
            return [ValidationIssue(f"{location}.command", _NO_COMMAND, "policy")]
        return []

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config
        try:
            target = await _server(config)
            tools = {t.remote_name: t for t in await target.atools(cached=True)}
            found = tools.get(config.tool)
            if found is None:
                raise NodeError(f"MCP server {target.name!r} has no tool {config.tool!r} "
                                f"(it has {', '.join(sorted(tools))})", kind="user",
                                retryable=False)
            try:
                found.parse(config.arguments)
            except ValueError as exc:
                raise NodeError(f"arguments of {target.name}.{config.tool} are invalid: {exc}",
                                kind="validation", retryable=False) from None
            return await target.acall(config.tool, config.arguments)
        except McpToolError as exc:
            raise NodeError(str(exc), kind="user", retryable=False) from None
        except McpError as exc:
            raise NodeError(str(exc), kind="provider", retryable=True) from None


async def _server(config: McpToolNode.Config) -> McpServer:
    if config.server is not None:
        found = get_server(config.server)
        found.timeout_s = max(found.timeout_s, config.timeout_s)
        return found
    policy = current_policy()
    if policy.restricted:
        if config.command is not None:
            raise PolicyError(_NO_COMMAND)
        from fm_lab.security.egress import checked_addresses

        parts = urlsplit(config.url or "")
        await checked_addresses(parts.hostname or "", parts.port or 443, policy)
    spec = json.dumps([config.command, config.url, config.connection])
    name = "node-" + hashlib.sha256(spec.encode()).hexdigest()[:12]
    return server(name, command=config.command, url=config.url,
                  connection=config.connection, timeout_s=config.timeout_s)
