"""The kernel-side engine: plans, the scheduler, runs and the user-facing entry points."""

from fm_lab.engine.admin import audit, delete_run, set_store_setting, store_settings, workflows
from fm_lab.engine.api import (
    arerun,
    aresume,
    arun,
    asignal,
    asubmit,
    cancel,
    connect,
    default_store,
    get_run,
    pending,
    recover,
    rerun,
    resume,
    run,
    runs,
    signal,
    submit,
    validate,
)
from fm_lab.engine.diff import diff
from fm_lab.engine.errors import (
    ResumeError,
    ResumeNotAllowedError,
    ResumeValidationError,
    RunFailedError,
    StateValidationError,
)
from fm_lab.engine.fork import ForkError, afork, fork
from fm_lab.engine.replay import Replay, areplay, replay
from fm_lab.engine.run import NodeResult, Run
from fm_lab.engine.stream import RunStream, stream, stream_resume
from fm_lab.exceptions import NodeError
from fm_lab.nodes.base import NodeType
from fm_lab.nodes.registry import register_default_lazy


def _agent_node() -> type[NodeType]:
    from fm_lab.agents.node import AgentNode

    return AgentNode


def _kb_query_node() -> type[NodeType]:
    from fm_lab.kb.node import KbQueryNode

    return KbQueryNode


# The application's node types that adapt layers above nodes/ (agents, knowledge bases) are
# added where it is assembled: here, above them, lazily (their modules load on first lookup).
# pyproject.toml declares them as `fm_lab.nodes` entry points too, for a process that looks
# a type up without the engine.
def _mcp_tool_node() -> type[NodeType]:
    from fm_lab.mcp.node import McpToolNode

    return McpToolNode


register_default_lazy("agent", _agent_node)
register_default_lazy("kb_query", _kb_query_node)
register_default_lazy("mcp_tool", _mcp_tool_node)

__all__ = [
    "ForkError",
    "NodeError",
    "NodeResult",
    "Replay",
    "ResumeError",
    "ResumeNotAllowedError",
    "ResumeValidationError",
    "Run",
    "RunFailedError",
    "RunStream",
    "StateValidationError",
    "afork",
    "areplay",
    "arerun",
    "aresume",
    "arun",
    "asignal",
    "asubmit",
    "audit",
    "cancel",
    "connect",
    "default_store",
    "delete_run",
    "diff",
    "fork",
    "get_run",
    "pending",
    "recover",
    "replay",
    "rerun",
    "resume",
    "run",
    "runs",
    "set_store_setting",
    "signal",
    "store_settings",
    "stream",
    "stream_resume",
    "submit",
    "validate",
    "workflows",
]
