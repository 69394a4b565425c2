"""``$var`` and ``{expr}`` in a magic's line, expanded as IPython expands its other magics'
lines (its ``DollarFormatter``: ``$name``, ``$name.attr``, ``{expression}``, ``$$`` for a
literal ``$``, ``{{``/``}}`` for literal braces), but word by word:

- the line is split into words first (shell quoting, :func:`shlex.split`), so a value never
  becomes several words nor changes the grammar: ``$title`` holding ``"a b"`` is one word;
- a word that is a JSON object or array (``'{"a": 1}'``) is taken literally, where IPython
  would evaluate ``{"a": 1}`` as Python;
- a word that is exactly one ``{expr}`` or ``$name`` is a :class:`Bound`: its text is the
  value's ``str()`` and ``.value`` the object itself, for options that take objects;
- in ``--option=VALUE`` the VALUE is expanded as a word of its own.

>>> expand_words('show $rid --data {d} --inputs \\'{"a": 1}\\' x-{n+1}',
...              {"rid": "r1", "d": {"ok": True}, "n": 1})
['show', 'r1', '--data', "{'ok': True}", '--inputs', '{"a": 1}', 'x-2']
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

from IPython.utils.text import DollarFormatter

_FORMATTER = DollarFormatter()
_OPTION_VALUE = re.compile(r"^(--[A-Za-z][\w-]*)=(.+)$", re.DOTALL)


class ExpansionError(ValueError):
    """A word whose ``{expr}`` or ``$name`` could not be evaluated."""


class Bound(str):
    """A word that was exactly one ``{expr}`` or ``$name``: its text, and the value."""

    value: Any

    def __new__(cls, value: Any) -> Bound:
        word = super().__new__(cls, str(value))
        word.value = value
        return word


def expand_words(line: str, namespace: Mapping[str, Any]) -> list[str]:
    """The words of ``line`` (shell quoting), each expanded against ``namespace``."""
    try:
        words = shlex.split(line)
    except ValueError as exc:  # "No closing quotation"
        raise ExpansionError(f"{exc} in {line!r}") from None
    expanded: list[str] = []
    for word in words:
        match = _OPTION_VALUE.match(word)
        if match is None:
            expanded.append(expand_word(word, namespace))
            continue
        value = expand_word(match.group(2), namespace)
        if isinstance(value, Bound):  # keep the object: the option and its value apart
            expanded += [match.group(1), value]
        else:
            expanded.append(f"{match.group(1)}={value}")
    return expanded


def expand_word(word: str, namespace: Mapping[str, Any]) -> str:
    """One word expanded (see the module's docstring); a :class:`Bound` when the word was
    exactly one ``{expr}`` or ``$name``."""
    if "$" not in word and "{" not in word and "}" not in word:
        return word
    if _is_json(word):
        return word
    try:  # (literal, field, spec, conversion); $name ends with an empty part
        parts = [p for p in _FORMATTER.parse(word) if p[0] or p[1] is not None]
    except ValueError:  # unbalanced braces: not meant as an expression (IPython keeps it too)
        return word
    ns = dict(namespace)
    try:
        if len(parts) == 1 and not parts[0][0] and parts[0][1] is not None and not parts[0][3]:
            field, spec = parts[0][1], parts[0][2]
            return Bound(eval(f"{field}:{spec}" if spec else field, ns))
        return str(_FORMATTER.vformat(word, args=[], kwargs=ns))
    except NameError as exc:
        raise ExpansionError(f"{word}: no variable {exc.name!r} in the notebook "
                             "(write $$ for a literal $, {{ }} for literal braces)") from None
    except Exception as exc:
        raise ExpansionError(f"{word}: {type(exc).__name__}: {exc}") from None


def _is_json(word: str) -> bool:
    if not word.startswith(("{", "[")):
        return False
    try:
        json.loads(word)
    except ValueError:
        return False
    return True
