"""Rendering config templates in a sandboxed Jinja2 environment (:mod:`.sandbox`, imported with
the first template rendered).

A string that is one whole expression (``"{{ nodes.fetch.output.items }}"``) keeps its JSON
type; any other templated string renders to text. A rendered value is never rendered again, so
data that looks like a template (an input, an upstream output) stays data. A whole expression
that is a dotted path of keys present in the scope's mappings (what most configs reference) is
looked up directly, with the sandbox's result (a mapping's key first), without Jinja (~50 us a
node less); anything else goes to Jinja.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fm_lab.spec.templates import is_template

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

_WHOLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.S)
_PATH = re.compile(r"^\s*\{\{\s*(?P<path>[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*\}\}\s*$",
                   re.ASCII)
_CONSTANTS = frozenset({"true", "false", "none", "True", "False", "None"})  # Jinja literals


def _tojson(value: Any) -> str:
    from fm_lab.store.codec import dumps

    return dumps(value)


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    """The shared sandbox: no attribute access to internals, no mutation of values (jinja2
    loads with it, at the first template rendered)."""
    from jinja2 import StrictUndefined

    from fm_lab.engine.sandbox import SandboxEnvironment

    env = SandboxEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["tojson"] = _tojson
    env.globals["json"] = json.loads
    return env


@lru_cache(maxsize=8192)
def _compiled(source: str) -> Any:
    env = environment()
    match = _WHOLE.match(source)
    if match:
        return env.compile_expression(match["expr"], undefined_to_none=False)
    return env.from_string(source)


@lru_cache(maxsize=8192)
def _path(source: str) -> tuple[str, ...] | None:
    """The names of a template that is one dotted path (``{{ nodes.a.output }}``), else None."""
    match = _PATH.match(source)
    if match is None:
        return None
    names = tuple(name.strip() for name in match["path"].split("."))
    return None if names[0] in _CONSTANTS else names


def render_template(source: str, scope: dict[str, Any]) -> Any:
    """Render one template string against ``scope`` (nodes, inputs, state)."""
    from fm_lab.engine.sandbox import bounded_text

    path = _path(source)
    if path is not None:  # each name a key of the mapping before it: the sandbox's answer
        value: Any = scope
        for name in path:
            if not isinstance(value, Mapping) or name not in value:
                break
            value = value[name]
        else:
            return value
    compiled = _compiled(source)
    if hasattr(compiled, "generate"):
        return bounded_text(compiled.generate(scope))
    value = compiled(**scope)
    _raise_undefined(value)
    return value


def _raise_undefined(value: Any) -> None:
    """Raise the UndefinedError (naming what is missing) of an Undefined anywhere in value."""
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        str(value)
    elif isinstance(value, dict):
        for item in value.values():
            _raise_undefined(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _raise_undefined(item)


def render_value(value: Any, scope: dict[str, Any]) -> Any:
    """Render every template inside ``value`` (dicts and lists walked recursively)."""
    if isinstance(value, str):
        return render_template(value, scope) if is_template(value) else value
    if isinstance(value, dict):
        return {key: render_value(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, scope) for item in value]
    return value


def render_config(
    config: dict[str, Any], scope: dict[str, Any], raw: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Render a node config, passing ``raw`` keys (bodies rendered per item) through as is."""
    return {
        key: value if key in raw else render_value(value, scope) for key, value in config.items()
    }


def has_templates(value: Any) -> bool:
    """True when ``value`` contains a template anywhere."""
    if not value:
        return False
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, dict):
        return any(has_templates(item) for item in value.values())
    if isinstance(value, list):
        return any(has_templates(item) for item in value)
    return False
