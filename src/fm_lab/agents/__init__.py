"""Agents with typed tools (validated arguments fed back to the model when invalid),
sub-agents, memory, streaming, and a registry the ``agent`` node type reads.

This package's public face sits above the engine (docs/design.md, "Layers"): it imports
:mod:`fm_lab.agents.durable_agent`, which installs durable turns on :class:`Agent`."""

from fm_lab.agents.agent import Agent
from fm_lab.agents.context import AgentInfo, RequestContext, ToolContext, WorkflowInfo
from fm_lab.agents.durable_agent import DurableAgent
from fm_lab.agents.messages import MessageList
from fm_lab.agents.registry import get, register, registered
from fm_lab.agents.result import AgentResult
from fm_lab.agents.tools import Tool, ToolOutputError, tool
from fm_lab.agents.voice import Voice, VoiceTurn
from fm_lab.agents.workflow_tool import WorkflowTool, workflow_tool

__all__ = ["Agent", "AgentInfo", "AgentResult", "DurableAgent", "MessageList",
           "RequestContext", "Tool", "ToolContext", "ToolOutputError", "Voice", "VoiceTurn",
           "WorkflowInfo", "WorkflowTool", "get", "register", "registered", "tool",
           "workflow_tool"]
