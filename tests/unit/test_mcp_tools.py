"""MCP pieces that need no server: argument checks against a tool's JSON Schema, the node's
config rules and the one-line errors of servers that are not there."""

from __future__ import annotations

import pytest

import fm_lab
from fm_lab.mcp import McpError, McpServer, get_server, server
from fm_lab.mcp.tools import McpTool

SCHEMA = {"type": "object", "required": ["a", "b"], "additionalProperties": False,
          "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "minimum": 0}}}


def _tool() -> McpTool:
    return McpTool(McpServer("calc", command=["calc-server"]), "add", "calc_add", "Add.", SCHEMA)


def test_arguments_are_checked_against_the_servers_schema_every_problem_at_once():
    add = _tool()
    assert add.schema()["function"] == {"name": "calc_add", "description": "Add.",
                                        "parameters": SCHEMA}
    assert add.parse('{"a": 1, "b": 2}').model_extra == {"a": 1, "b": 2}
    with pytest.raises(ValueError) as caught:
        add.parse({"a": "two", "b": -1, "c": 3})
    problems = str(caught.value)
    assert "a: 'two' is not of type 'integer'" in problems
    assert "b: -1 is less than the minimum of 0" in problems
    assert "'c' was unexpected" in problems
    with pytest.raises(ValueError, match="must be a JSON object"):
        add.parse("[1, 2]")
    assert add.span_attributes == {"mcp.server": "calc", "mcp.transport": "stdio",
                                   "mcp.tool": "add"}


def test_a_server_needs_one_transport_and_names_resolve_clearly():
    with pytest.raises(ValueError, match=r"give command= .* or url="):
        McpServer("x")
    with pytest.raises(ValueError, match="one of them"):
        McpServer("x", command=["a"], url="http://127.0.0.1:1/mcp")
    made = server("twice", command="python -m my_server --flag")
    assert made.command == ["python", "-m", "my_server", "--flag"]
    assert server("twice", command=["python", "-m", "my_server", "--flag"]) is made
    assert get_server("twice") is made
    with pytest.raises(McpError, match=r"no MCP server named 'nope' .*twice"):
        get_server("nope")


def test_the_node_needs_exactly_one_server_and_reports_an_unknown_one():
    both = {"id": "w", "nodes": {"n": {"type": "mcp_tool", "config": {
        "server": "a", "url": "http://127.0.0.1:1/mcp", "tool": "t"}}}}
    with pytest.raises(fm_lab.WorkflowValidationError, match="exactly one of server"):
        fm_lab.validate(both)
    run = fm_lab.run({"id": "w", "nodes": {"n": {"type": "mcp_tool", "config": {
        "server": "nope", "tool": "t"}}}}, store=fm_lab.Store(":memory:"))
    assert run.status == "failed" and "no MCP server named 'nope'" in str(run.error)
