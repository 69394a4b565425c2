"""Agents with typed tools (validated arguments fed back to the model when invalid),
sub-agents, memory, streaming, and a registry the ``agent`` node type reads."""

from fm_lab.agents.agent import Agent, AgentResult
from fm_lab.agents.context import AgentInfo, RequestContext, ToolContext, WorkflowInfo
from fm_lab.agents.messages import MessageList
from fm_lab.agents.registry import get, register, registered
from fm_lab.agents.tools import Tool, tool

__all__ = ["Agent", "AgentInfo", "AgentResult", "MessageList", "RequestContext", "Tool",
           "ToolContext", "WorkflowInfo", "get", "register", "registered", "tool"]
