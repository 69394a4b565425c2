"""Finding templates in config values and the names they refer to (no rendering here; jinja2
is imported to parse the first template, not before)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_MARKERS = ("{{", "{%")


def is_template(value: Any) -> bool:
    """True for a string that contains Jinja markup."""
    return isinstance(value, str) and any(marker in value for marker in _MARKERS)


def iter_templates(value: Any, location: str) -> Iterator[tuple[str, str]]:
    """Yield ``(location, template)`` for every templated string inside ``value``."""
    if is_template(value):
        yield location, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_templates(item, f"{location}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_templates(item, f"{location}[{index}]")


@dataclass(frozen=True)
class TemplateRefs:
    """Names a template reads: ``nodes.<id>``, ``inputs.<key>``, ``state.<key>``."""

    nodes: frozenset[str] = frozenset()
    inputs: frozenset[str] = frozenset()
    state: frozenset[str] = frozenset()
    error: str | None = None
    _all: tuple[str, ...] = field(default=(), repr=False)


_ROOTS = ("nodes", "inputs", "state")


@lru_cache(maxsize=4096)
def template_refs(source: str) -> TemplateRefs:
    """Parse ``source`` and collect what it refers to, or the syntax error (jinja2 loads
    with the first template)."""
    import jinja2
    from jinja2 import nodes as jnodes

    try:
        tree = jinja2.Environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return TemplateRefs(error=f"template syntax error: {exc.message}")
    found: dict[str, set[str]] = {root: set() for root in _ROOTS}
    for node in tree.find_all((jnodes.Getattr, jnodes.Getitem)):
        base = node.node  # type: ignore[attr-defined]
        if isinstance(base, jnodes.Name) and base.name in found:
            if isinstance(node, jnodes.Getattr):
                found[base.name].add(node.attr)
            elif (
                isinstance(node, jnodes.Getitem)
                and isinstance(node.arg, jnodes.Const)
                and isinstance(node.arg.value, str)
            ):
                found[base.name].add(node.arg.value)
    return TemplateRefs(
        nodes=frozenset(found["nodes"]),
        inputs=frozenset(found["inputs"]),
        state=frozenset(found["state"]),
    )
