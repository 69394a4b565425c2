"""fm_lab: design, run and analyse AI workflows and agents inside JupyterLab.

>>> import fm_lab
>>> wf = fm_lab.Workflow.from_file("examples/quickstart.flow.yaml")  # doctest: +SKIP
>>> run = fm_lab.run(wf, inputs={"topic": "duckdb"})                   # doctest: +SKIP

Names are imported lazily so ``import fm_lab`` stays fast.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# litellm downloads its price table at import unless told not to: fm_lab prices offline
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

_EXPORTS: dict[str, str] = {
    "Workflow": "fm_lab.spec",
    "Node": "fm_lab.spec",
    "Edge": "fm_lab.spec",
    "RetryPolicy": "fm_lab.spec",
    "WorkflowBuilder": "fm_lab.spec",
    "WorkflowValidationError": "fm_lab.spec",
    "ValidationIssue": "fm_lab.spec",
    "NodeType": "fm_lab.nodes",
    "NodeContext": "fm_lab.nodes",
    "register_node": "fm_lab.nodes",
    "register_function": "fm_lab.nodes",
    "NodeError": "fm_lab.exceptions",
    "Run": "fm_lab.engine",
    "NodeResult": "fm_lab.engine",
    "RunFailedError": "fm_lab.engine",
    "StateValidationError": "fm_lab.engine",
    "connect": "fm_lab.engine",
    "default_store": "fm_lab.engine",
    "run": "fm_lab.engine",
    "arun": "fm_lab.engine",
    "resume": "fm_lab.engine",
    "rerun": "fm_lab.engine",
    "arerun": "fm_lab.engine",
    "aresume": "fm_lab.engine",
    "runs": "fm_lab.engine",
    "get_run": "fm_lab.engine",
    "validate": "fm_lab.engine",
    "ResumeValidationError": "fm_lab.engine",
    "ResumeError": "fm_lab.engine",
    "recover": "fm_lab.engine",
    "cancel": "fm_lab.engine",
    "asignal": "fm_lab.engine",
    "signal": "fm_lab.engine",
    "pending": "fm_lab.engine",
    "traces": "fm_lab.tracing",
    "trace": "fm_lab.tracing",
    "usage": "fm_lab.tracing",
    "sql": "fm_lab.tracing",
    "slowest": "fm_lab.tracing",
    "errors": "fm_lab.tracing",
    "set_price": "fm_lab.tracing",
    "plot_trace": "fm_lab.tracing",
    "plot_usage": "fm_lab.tracing",
    "secret": "fm_lab.tracing",
    "export_otel": "fm_lab.tracing",
    "Agent": "fm_lab.agents",
    "tool": "fm_lab.agents",
    "Memory": "fm_lab.memory",
    "Store": "fm_lab.store",
    "StoreLockedError": "fm_lab.store",
    "RunNotFoundError": "fm_lab.store",
    "RunLockedError": "fm_lab.store",
    "GraphWidget": "fm_lab.widget",
}

__all__ = [
    "Agent",
    "Edge",
    "GraphWidget",
    "Memory",
    "Node",
    "NodeContext",
    "NodeError",
    "NodeResult",
    "NodeType",
    "ResumeError",
    "ResumeValidationError",
    "RetryPolicy",
    "Run",
    "RunFailedError",
    "RunLockedError",
    "RunNotFoundError",
    "StateValidationError",
    "Store",
    "StoreLockedError",
    "ValidationIssue",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowValidationError",
    "arerun",
    "aresume",
    "arun",
    "asignal",
    "cancel",
    "connect",
    "default_store",
    "errors",
    "export_otel",
    "get_run",
    "pending",
    "plot_trace",
    "plot_usage",
    "recover",
    "register_function",
    "register_node",
    "rerun",
    "resume",
    "run",
    "runs",
    "secret",
    "set_price",
    "signal",
    "slowest",
    "sql",
    "tool",
    "trace",
    "traces",
    "usage",
    "validate",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext fm_lab``: the ``%%flow`` and ``%flow`` magics."""
    from fm_lab.magics import load_ipython_extension as load

    load(ipython)


# subpackages reachable as attributes after a bare ``import fm_lab`` (``fm_lab.llm.script``)
_SUBMODULES = frozenset({"agents", "llm", "tracing", "memory", "kb", "batch", "widget", "nodes",
                         "spec", "engine", "store", "progress", "timers"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"fm_lab.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fm_lab' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from fm_lab.agents import Agent, tool
    from fm_lab.engine import (
        NodeResult,
        ResumeError,
        ResumeValidationError,
        Run,
        RunFailedError,
        StateValidationError,
        arerun,
        aresume,
        arun,
        asignal,
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
        validate,
    )
    from fm_lab.exceptions import NodeError
    from fm_lab.memory import Memory
    from fm_lab.nodes import NodeContext, NodeType, register_function, register_node
    from fm_lab.spec import (
        Edge,
        Node,
        RetryPolicy,
        ValidationIssue,
        Workflow,
        WorkflowBuilder,
        WorkflowValidationError,
    )
    from fm_lab.store import RunLockedError, RunNotFoundError, Store, StoreLockedError
    from fm_lab.tracing import (
        errors,
        export_otel,
        plot_trace,
        plot_usage,
        secret,
        set_price,
        slowest,
        sql,
        trace,
        traces,
        usage,
    )
    from fm_lab.widget import GraphWidget
