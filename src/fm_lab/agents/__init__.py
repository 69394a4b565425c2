"""Agents with typed tools (validated arguments fed back to the model when invalid)."""

from fm_lab.agents.agent import Agent, AgentResult
from fm_lab.agents.tools import Tool, tool

__all__ = ["Agent", "AgentResult", "Tool", "tool"]
