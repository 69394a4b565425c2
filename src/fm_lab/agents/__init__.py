"""Agents with typed tools (validated arguments fed back to the model when invalid),
sub-agents, memory, streaming, and a registry the ``agent`` node type reads."""

from fm_lab.agents.agent import Agent
from fm_lab.agents.context import AgentInfo, RequestContext, ToolContext, WorkflowInfo
from fm_lab.agents.messages import MessageList
from fm_lab.agents.registry import get, register, registered
from fm_lab.agents.result import AgentResult
from fm_lab.agents.tools import Tool, tool
from fm_lab.agents.workflow_tool import WorkflowTool, workflow_tool

__all__ = ["Agent", "AgentInfo", "AgentResult", "MessageList", "RequestContext", "Tool",
           "ToolContext", "WorkflowInfo", "WorkflowTool", "get", "register", "registered", "tool",
           "workflow_tool"]
