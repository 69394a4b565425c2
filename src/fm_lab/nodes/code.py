"""The ``code`` node: calls a Python function, referenced by name or ``module:function``."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import importlib
import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from fm_lab.nodes.base import NodeContext, NodeType

F = TypeVar("F", bound=Callable[..., Any])
_FUNCTIONS: dict[str, Callable[..., Any]] = {}


def register_function(fn: F | None = None, *, name: str | None = None) -> Any:
    """Make ``fn`` callable from ``code`` nodes as ``function: <name>``.

    >>> @register_function
    ... def add(a: int, b: int) -> int:
    ...     return a + b
    >>> resolve_function("add")(1, 2)
    3
    """

    def decorate(func: F) -> F:
        _FUNCTIONS[name or func.__name__] = func
        return func

    return decorate(fn) if fn is not None else decorate


def resolve_function(reference: str) -> Callable[..., Any]:
    """Find a registered function, or import ``package.module:attr``."""
    if reference in _FUNCTIONS:
        return _FUNCTIONS[reference]
    if ":" not in reference:
        known = ", ".join(sorted(_FUNCTIONS)) or "none"
        raise LookupError(
            f"no function {reference!r}: register it with @fm_lab.register_function or write "
            f"'module:function' (registered: {known})"
        )
    module_name, _, attr = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{reference!r} is not callable")
    return target  # type: ignore[no-any-return]


class CodeNode(NodeType):
    """Calls ``function(**args)``; a parameter named ``ctx`` gets the node context and one
    named ``inputs`` the upstream outputs. Sync functions run in a worker thread."""

    type_name = "code"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        function: str = Field(description="Registered name or 'module:function'.")
        args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
        thread: bool = Field(True, description="Run a sync function in a worker thread.")

    def cache_version(self) -> str:
        """The called function's code: editing it invalidates cached results."""
        return code_fingerprint(resolve_function(self.config.function))

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config
        fn = resolve_function(config.function)
        kwargs = dict(config.args)
        params = _parameters(fn)
        if "ctx" in params:
            kwargs["ctx"] = ctx
        if "inputs" in params:
            kwargs["inputs"] = inputs
        if inspect.iscoroutinefunction(fn):
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


def _parameters(fn: Callable[..., Any]) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return frozenset()
