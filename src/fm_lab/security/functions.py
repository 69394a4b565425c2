"""What a workflow may name to be called: registered functions, ``fm_lab.functions`` entry
points and ``module:attr`` import paths, each checked against the policy in force before
anything is imported.

A name without ``:`` only ever finds something registered (or an entry point), so it is allowed
under every policy; an import path ``module:attr`` imports code, so the restricted policy allows
it only when it is an entry point's target, a registered function's own path, or its module
matches ``FM_LAB_ALLOW``.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from fm_lab.security.policy import ALLOW_ENV, Policy, PolicyError, current_policy

F = TypeVar("F", bound=Callable[..., Any])
ENTRY_POINT_GROUP = "fm_lab.functions"
_FUNCTIONS: dict[str, Callable[..., Any]] = {}


class Reference(NamedTuple):
    """Something a node's config names to be imported or called: the config ``field`` it is
    in (``tools[0]``), the ``reference`` (a name or ``module:attr``) and ``what`` it is
    ("function", "tool", "agent"), for messages."""

    field: str
    reference: str
    what: str


def register_function(fn: F | None = None, *, name: str | None = None) -> Any:
    """Make ``fn`` callable from workflows as ``function: <name>`` (code nodes, agent tools),
    under every policy.

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


def registered_functions() -> list[str]:
    """The names registered in this process."""
    return sorted(_FUNCTIONS)


@functools.cache
def entry_point_functions() -> dict[str, str]:
    """The ``fm_lab.functions`` entry points installed: ``{name: "module:attr"}``."""
    from importlib.metadata import entry_points

    return {entry.name: entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)}


def is_import_path(reference: str) -> bool:
    """Whether ``reference`` is ``module:attr`` (else it is a registered name)."""
    return ":" in reference


def reference_problem(reference: str, what: str, policy: Policy | None = None) -> str | None:
    """Why ``policy`` (default: the one in force) refuses to let a workflow name
    ``reference`` (a ``what``: "function", "tool", "agent"), or None if it may."""
    policy = policy or current_policy()
    if not policy.restricted:
        return None
    if "{{" in reference or "{%" in reference:  # it may render to any import path
        return (f"{what} {reference!r} is a template: the {policy.mode} policy needs the name "
                "written out, so it can be checked before the run")
    if not is_import_path(reference):
        return None
    module = reference.partition(":")[0]
    if (policy.allows_module(module) or reference in entry_point_functions().values()
            or _registered_path(reference)):
        return None
    return (f"{what} {reference!r} is not allowed by the {policy.mode} policy: register it with "
            f"@fm_lab.register_function, publish it as an {ENTRY_POINT_GROUP} entry point, or "
            f"allow module {module!r} in {ALLOW_ENV} or the store's policy.allow setting")


def check_reference(reference: str, what: str) -> None:
    """Raise :class:`PolicyError` if the policy in force refuses ``reference``."""
    problem = reference_problem(reference, what)
    if problem is not None:
        raise PolicyError(problem)


def _registered_path(reference: str) -> bool:
    """Whether a registered function lives at the import path ``reference``."""
    module, _, attr = reference.partition(":")
    return any(getattr(fn, "__module__", None) == module
               and getattr(fn, "__qualname__", None) == attr for fn in _FUNCTIONS.values())


def import_object(path: str, what: str = "object") -> Any:
    """The object at ``module:attr`` (``module:attr.sub`` works too), if the policy in force
    allows naming it (:class:`PolicyError` otherwise, before anything is imported)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{path!r} is not an import path of the form module:attr")
    check_reference(path, what)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import {module_name!r} for {path!r}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(target, part):
            raise LookupError(f"{module_name!r} has no attribute {attr!r} (from {path!r})")
        target = getattr(target, part)
    return target


def resolve_function(reference: str, what: str = "function") -> Callable[..., Any]:
    """A registered function, an ``fm_lab.functions`` entry point, or the callable at
    ``package.module:attr`` (if the policy in force allows it)."""
    if reference in _FUNCTIONS:
        return _FUNCTIONS[reference]
    if not is_import_path(reference):
        target = entry_point_functions().get(reference)
        if target is None:
            known = ", ".join(registered_functions()) or "none"
            raise LookupError(
                f"no function {reference!r}: register it with @fm_lab.register_function or "
                f"write 'module:function' (registered: {known})"
            )
        reference = target
    found = import_object(reference, what)
    if not callable(found):
        raise TypeError(f"{reference!r} is not callable")
    return found  # type: ignore[no-any-return]
