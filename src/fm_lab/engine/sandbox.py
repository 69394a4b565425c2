"""The sandboxed Jinja2 environment config templates render in.

Jinja's ``ImmutableSandboxedEnvironment`` already refuses internals (``__class__``,
``__globals__``, ``_private`` names, ``str.format`` field tricks) and mutation of values;
this one adds limits on the operations that turn a short template into a huge value, so one
expression cannot take the process's memory: ``*`` (repetition), ``**`` (integer powers),
padding (``center``, ``ljust``, ``rjust``, ``zfill``, ``expandtabs`` and the ``center``,
``indent`` and ``batch`` filters), format widths (``'%099999999d'``, ``'{:099999999}'``) and the
length of the rendered text. ``range`` is Jinja's (at most 100,000 items) and ``lipsum`` is
gone. A refusal is Jinja's ``SecurityError`` naming the limit: the node fails as a template
error (kind ``validation``). Loops can still spend CPU (see the README's "Security model").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2 import filters as jinja_filters
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_ITEMS = 1_000_000
"""Characters or items one repetition, padding or batch may produce."""
MAX_POWER_BITS = 100_000
"""Bits an integer power may produce (``2 ** 100000`` is fine, ``10 ** 10 ** 9`` is not)."""
MAX_OUTPUT = 10_000_000
"""Characters one template may render."""

_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_FORMAT_METHODS = frozenset({"format", "format_map"})
# a width or precision of 7+ digits, or one taken from the arguments ('%*d', '{:{}}')
_WIDE = re.compile(r"%[-#0 +]*(\*|\d{7,}|\.\*|\.\d{7,})|\{[^{}]*:[^{}]*(\d{7,}|\{)")


def _refuse(what: str) -> SecurityError:
    return SecurityError(f"{what} is over the template sandbox's limit")


def _size(value: Any) -> int | None:
    """The length of a repeatable value (str, list, tuple), else None."""
    return len(value) if isinstance(value, str | list | tuple) else None


def check_repeat(left: Any, right: Any) -> None:
    """Refuse ``left * right`` when it would hold more than :data:`MAX_ITEMS`."""
    for seq, times in ((left, right), (right, left)):
        size = _size(seq)
        if size is not None and isinstance(times, int) and size * times > MAX_ITEMS:
            raise _refuse(f"repeating {size} items {times} times")


def check_power(base: Any, exponent: Any) -> None:
    """Refuse an integer power of more than :data:`MAX_POWER_BITS` bits."""
    if (isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1
            and base.bit_length() * exponent > MAX_POWER_BITS):
        raise _refuse(f"the power {base} ** {exponent}")


def check_width(width: Any, what: str) -> None:
    """Refuse a padding width over :data:`MAX_ITEMS`."""
    if isinstance(width, int) and width > MAX_ITEMS:
        raise _refuse(f"{what} width {width}")


def check_format(text: Any) -> None:
    """Refuse a format string with a huge or argument-given width or precision."""
    if isinstance(text, str) and _WIDE.search(text):
        raise _refuse(f"a format width in {text[:40]!r}")


def _bounded(name: str, check: Callable[..., None]) -> Callable[..., Any]:
    """Jinja's filter ``name``, its arguments checked first."""
    original = jinja_filters.FILTERS[name]

    def run(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return original(*args, **kwargs)

    return run


def _center(value: Any, width: Any = 80) -> None:
    check_width(width, "center")


def _indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    if isinstance(width, int):
        check_repeat(str(value), width)


def _batch(value: Any, linecount: Any, *args: Any, **kwargs: Any) -> None:
    check_width(linecount, "batch")


def _format(value: Any, *args: Any, **kwargs: Any) -> None:
    check_format(value)


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox: no internals, no mutation, bounded amplifiers, and ``a.b`` on a mapping
    reads the key ``b`` first (JSON keys such as ``items`` or ``values`` read as data)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)  # paragraphs of filler text, any number of them
        for name, check in (("center", _center), ("indent", _indent), ("batch", _batch),
                            ("format", _format)):
            self.filters[name] = _bounded(name, check)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            check_repeat(left, right)
        elif operator == "**":
            check_power(left, right)
        elif operator == "%":
            check_format(left)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's sandboxed ``str.format``/``format_map``, for format strings within limits."""
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and getattr(value, "__name__", "") in _FORMAT_METHODS:
            check_format(owner)
        return super().wrap_str_format(value)

    def call(__self, __context: Context, __obj: Any, *args: Any,  # Jinja's signature
             **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str) and name in _PADDING_METHODS:
            for value in (*args, *kwargs.values()):
                check_width(value, name)
        return super().call(__context, __obj, *args, **kwargs)


def bounded_text(chunks: Iterable[str]) -> str:
    """Join rendered chunks, refusing more than :data:`MAX_OUTPUT` characters."""
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise _refuse(f"rendered text of more than {MAX_OUTPUT} characters")
        parts.append(chunk)
    return "".join(parts)
