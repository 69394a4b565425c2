"""Bounds on what fm_lab reads from users: document size, nesting depth, alias expansion.

A hostile or broken document must fail fast with a clear error, never exhaust memory, the
stack or the patience of the person who gave it. The limits are module constants so that
code (or a test) can change them: ``fm_lab.spec.limits.MAX_DEPTH = 500``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
"""Largest workflow, inputs or items document read (bytes)."""

MAX_DEPTH = 200
"""Deepest nesting of mappings and lists in a document or in run inputs."""

MAX_YAML_NODES = 500_000
"""Most YAML nodes a document may hold once its aliases are expanded (a billion-laughs
document of a few hundred bytes expands to billions)."""


def json_problem(value: Any, where: str, *, plain: bool = True) -> tuple[str, str] | None:
    """The first reason ``value`` is not a bounded JSON value, as ``(location, message)``
    with locations under ``where`` (None when it is one). ``plain=False`` checks only depth
    and self-reference."""
    for path, item, depth in _walk(value, where):
        if depth > MAX_DEPTH:
            return path, f"nested deeper than {MAX_DEPTH} levels"
        if item is _CYCLE:
            return path, "refers to itself"
        if not plain or isinstance(item, _SCALARS):
            continue
        if isinstance(item, dict):
            bad = next((k for k in item if not isinstance(k, str)), None)
            if bad is not None:
                return path, f"key {bad!r} is a {type(bad).__name__}; JSON keys are strings"
        elif not isinstance(item, list | tuple):
            return path, (f"a {type(item).__name__} is not a JSON value (use null, booleans, "
                          "numbers, strings, lists and string-keyed dicts)")
    return None


_SCALARS = (str, int, float, type(None))
_CYCLE = object()


def _walk(value: Any, where: str) -> Iterator[tuple[str, Any, int]]:
    """Every value under ``value`` with its path and nesting level (the containers it is in,
    itself included), depth first, without recursion. A container deeper than
    :data:`MAX_DEPTH` is yielded but not entered; one met again inside itself is yielded as
    ``_CYCLE``."""
    stack: list[tuple[str, Any, int, frozenset[int]]] = [(where, value, 0, frozenset())]
    while stack:
        path, item, outer, ancestors = stack.pop()
        if not isinstance(item, dict | list | tuple):
            yield path, item, outer
            continue
        if id(item) in ancestors:
            yield path, _CYCLE, outer + 1
            continue
        yield path, item, outer + 1
        if outer + 1 > MAX_DEPTH:
            continue
        inner = ancestors | {id(item)}
        if isinstance(item, dict):
            children = [(f"{path}.{key}", child) for key, child in item.items()]
        else:
            children = [(f"{path}[{index}]", child) for index, child in enumerate(item)]
        stack.extend((sub, child, outer + 1, inner) for sub, child in reversed(children))
