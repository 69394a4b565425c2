"""The ``code`` node: calls a Python function, referenced by name or ``module:function``."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fm_lab.nodes.base import NodeContext, NodeType
from fm_lab.security.functions import Reference, register_function, resolve_function

__all__ = ["CodeNode", "code_fingerprint", "register_function", "resolve_function"]


class CodeNode(NodeType):
    """Calls ``function(**args)``; a parameter named ``ctx`` gets the node context and one
    named ``inputs`` the upstream outputs. Sync functions run in a worker thread."""

    type_name = "code"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        function: str = Field(description="Registered name or 'module:function'.")
        args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
        thread: bool = Field(True, description="Run a sync function in a worker thread.")

    @classmethod
    def references(cls, config: dict[str, Any]) -> list[Reference]:
        """The called function (checked against the policy before the run)."""
        function = config.get("function")
        return [Reference("function", function, "function")] if isinstance(function, str) else []

    def cache_version(self) -> str:
        """The called function's code: editing it invalidates cached results."""
        return code_fingerprint(resolve_function(self.config.function))

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config
        fn = resolve_function(config.function)
        kwargs = dict(config.args)
        params, is_async = _shape(fn)
        if "ctx" in params:
            kwargs["ctx"] = ctx
        if "inputs" in params:
            kwargs["inputs"] = inputs
        if is_async:
            return await fn(**kwargs)
        if config.thread and not threading.current_thread().name.startswith("fm_lab-code"):
            call = contextvars.copy_context().run
            return await asyncio.get_running_loop().run_in_executor(
                _executor(), functools.partial(call, fn, **kwargs)
            )
        result = fn(**kwargs)
        if inspect.isawaitable(result):
            return await result
        return result


def code_fingerprint(fn: Callable[..., Any]) -> str:
    """A digest of a function's bytecode and constants (its source may not be available)."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None:
        return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    digest = hashlib.sha256(code.co_code)
    digest.update(repr((code.co_consts, code.co_names, code.co_varnames)).encode())
    return digest.hexdigest()[:16]


_EXECUTOR: ThreadPoolExecutor | None = None
THREAD_PREFIX = "fm_lab-code"


def _executor() -> ThreadPoolExecutor:
    """fm_lab's own pool for sync code: a run that times out a node does not wait for it.
    Code already on one of its threads (a run inside a node) runs inline, so nested runs
    cannot exhaust the pool."""
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=32, thread_name_prefix=THREAD_PREFIX)
    return _EXECUTOR


def _shape(fn: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    """``fn``'s parameter names and whether it is a coroutine function, read once per function
    (``inspect.signature`` costs tens of microseconds, on every node of a chain)."""
    try:
        return _cached_shape(fn)
    except TypeError:  # an unhashable callable: read it every time
        return _read_shape(fn)


def _read_shape(fn: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    try:
        params = frozenset(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = frozenset()
    return params, inspect.iscoroutinefunction(fn)


_cached_shape = functools.lru_cache(maxsize=1024)(_read_shape)
