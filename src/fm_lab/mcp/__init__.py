"""MCP (Model Context Protocol) servers as fm_lab tools and nodes.

>>> calc = fm_lab.mcp.server("calc", command=["python", "calc_server.py"])  # doctest: +SKIP
>>> agent = fm_lab.Agent("maths", tools=[*calc.tools()])                    # doctest: +SKIP
>>> calc.call("add", {"a": 2, "b": 3})                                      # doctest: +SKIP
5

A workflow calls one tool with an ``mcp_tool`` node; ``fm-lab mcp serve`` makes stored or
given workflows the tools of an MCP server (:mod:`fm_lab.mcp.serve`). Needs the ``mcp`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fm_lab.mcp.client import (
        McpError,
        McpServer,
        McpToolError,
        close_all,
        get_server,
        server,
    )

__all__ = ["McpError", "McpServer", "McpToolError", "close_all", "get_server", "server"]


def __getattr__(name: str) -> Any:
    """The client's names, imported at first use (with asyncio): ``fm-lab --help`` builds the
    ``mcp`` command's parser from this package without them."""
    if name in __all__:
        from fm_lab.mcp import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
