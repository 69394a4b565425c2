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
    "fork": "fm_lab.engine",
    "afork": "fm_lab.engine",
    "ForkError": "fm_lab.engine",
    "diff": "fm_lab.engine",
    "replay": "fm_lab.engine",
    "areplay": "fm_lab.engine",
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
    "submit": "fm_lab.engine",
    "stream": "fm_lab.engine",
    "stream_resume": "fm_lab.engine",
    "RunStream": "fm_lab.engine",
    "asubmit": "fm_lab.engine",
    "pending": "fm_lab.engine",
    "audit": "fm_lab.engine",
    "delete_run": "fm_lab.engine",
    "workflows": "fm_lab.engine",
    "store_settings": "fm_lab.engine",
    "set_store_setting": "fm_lab.engine",
    "current_user": "fm_lab.identity",
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
    "RunStore": "fm_lab.store",
    "MemoryStore": "fm_lab.store",
    "UnsupportedStoreError": "fm_lab.store",
    "StoreLockedError": "fm_lab.store",
    "RunNotFoundError": "fm_lab.store",
    "RunLockedError": "fm_lab.store",
    "GraphWidget": "fm_lab.widget",
}

# the public API is the keys of _EXPORTS, once; the TYPE_CHECKING imports below repeat them
# for type checkers only (tests/unit/test_public_api.py checks that they agree)
__all__ = list(_EXPORTS)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext fm_lab``: the ``%%flow`` and ``%flow`` magics."""
    from fm_lab.magics import load_ipython_extension as load

    load(ipython)


# subpackages reachable as attributes after a bare ``import fm_lab`` (``fm_lab.llm.script``)
_SUBMODULES = frozenset({"agents", "llm", "tracing", "memory", "kb", "batch", "widget", "nodes",
                         "spec", "engine", "store", "progress", "timers", "security",
                         "mcp", "connections"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"fm_lab.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fm_lab' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    if module == "fm_lab.spec":  # fm_lab.Workflow(...).validate() knows the built-in types
        import_module("fm_lab.spec.validate").set_default_registry(_default_registry)
    globals()[name] = value
    return value


def _default_registry() -> Any:
    """The default node registry (imported on first use: spec/ may not import nodes/)."""
    from fm_lab.nodes.registry import default_registry

    return default_registry()


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # the same names, for type checkers (`as`: an explicit re-export)
    from fm_lab.agents import Agent as Agent
    from fm_lab.agents import tool as tool
    from fm_lab.engine import ForkError as ForkError
    from fm_lab.engine import NodeResult as NodeResult
    from fm_lab.engine import ResumeError as ResumeError
    from fm_lab.engine import ResumeValidationError as ResumeValidationError
    from fm_lab.engine import Run as Run
    from fm_lab.engine import RunFailedError as RunFailedError
    from fm_lab.engine import RunStream as RunStream
    from fm_lab.engine import StateValidationError as StateValidationError
    from fm_lab.engine import afork as afork
    from fm_lab.engine import areplay as areplay
    from fm_lab.engine import arerun as arerun
    from fm_lab.engine import aresume as aresume
    from fm_lab.engine import arun as arun
    from fm_lab.engine import asignal as asignal
    from fm_lab.engine import asubmit as asubmit
    from fm_lab.engine import audit as audit
    from fm_lab.engine import cancel as cancel
    from fm_lab.engine import connect as connect
    from fm_lab.engine import default_store as default_store
    from fm_lab.engine import delete_run as delete_run
    from fm_lab.engine import diff as diff
    from fm_lab.engine import fork as fork
    from fm_lab.engine import get_run as get_run
    from fm_lab.engine import pending as pending
    from fm_lab.engine import recover as recover
    from fm_lab.engine import replay as replay
    from fm_lab.engine import rerun as rerun
    from fm_lab.engine import resume as resume
    from fm_lab.engine import run as run
    from fm_lab.engine import runs as runs
    from fm_lab.engine import set_store_setting as set_store_setting
    from fm_lab.engine import signal as signal
    from fm_lab.engine import store_settings as store_settings
    from fm_lab.engine import stream as stream
    from fm_lab.engine import stream_resume as stream_resume
    from fm_lab.engine import submit as submit
    from fm_lab.engine import validate as validate
    from fm_lab.engine import workflows as workflows
    from fm_lab.exceptions import NodeError as NodeError
    from fm_lab.identity import current_user as current_user
    from fm_lab.memory import Memory as Memory
    from fm_lab.nodes import NodeContext as NodeContext
    from fm_lab.nodes import NodeType as NodeType
    from fm_lab.nodes import register_function as register_function
    from fm_lab.nodes import register_node as register_node
    from fm_lab.spec import Edge as Edge
    from fm_lab.spec import Node as Node
    from fm_lab.spec import RetryPolicy as RetryPolicy
    from fm_lab.spec import ValidationIssue as ValidationIssue
    from fm_lab.spec import Workflow as Workflow
    from fm_lab.spec import WorkflowBuilder as WorkflowBuilder
    from fm_lab.spec import WorkflowValidationError as WorkflowValidationError
    from fm_lab.store import MemoryStore as MemoryStore
    from fm_lab.store import RunLockedError as RunLockedError
    from fm_lab.store import RunNotFoundError as RunNotFoundError
    from fm_lab.store import RunStore as RunStore
    from fm_lab.store import Store as Store
    from fm_lab.store import StoreLockedError as StoreLockedError
    from fm_lab.store import UnsupportedStoreError as UnsupportedStoreError
    from fm_lab.tracing import errors as errors
    from fm_lab.tracing import export_otel as export_otel
    from fm_lab.tracing import plot_trace as plot_trace
    from fm_lab.tracing import plot_usage as plot_usage
    from fm_lab.tracing import secret as secret
    from fm_lab.tracing import set_price as set_price
    from fm_lab.tracing import slowest as slowest
    from fm_lab.tracing import sql as sql
    from fm_lab.tracing import trace as trace
    from fm_lab.tracing import traces as traces
    from fm_lab.tracing import usage as usage
    from fm_lab.widget import GraphWidget as GraphWidget
