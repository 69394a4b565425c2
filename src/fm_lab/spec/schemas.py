"""JSON Schema checks that do not import jsonschema unless a value or schema is bad.

``import jsonschema`` costs 1-3 s once JupyterLab is installed (it pulls in ``rfc3987_syntax``,
which compiles dozens of Lark grammars), more than a whole small run. So a schema whose
keywords mean the same in draft-07 and 2020-12 (types, properties, required, items as one
schema, enum/const, bounds, lengths, patterns, combinators; see ``_PLAIN`` and ``_NESTED``) is
compiled once per process by fastjsonschema (formats off, defaults not filled in) and a value
it accepts is valid. Anything else (``$ref``, ``prefixItems``, ``multipleOf``, another draft)
and every value the fast check rejects goes to jsonschema, whose verdict and messages are the
ones reported; jsonschema runs without a format checker, as before (``format`` annotates).
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_PLAIN = frozenset({
    "type", "enum", "const", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
    "maxProperties", "minProperties", "required", "title", "description", "default",
    "examples", "$comment", "readOnly", "writeOnly", "format", "$schema", "$id",
})
_ONE = frozenset({"additionalProperties", "items", "contains", "propertyNames", "not", "if",
                  "then", "else"})
_MANY = frozenset({"allOf", "anyOf", "oneOf"})
_MAP = frozenset({"properties", "patternProperties"})
_NESTED = _ONE | _MANY | _MAP
_DRAFTS = frozenset({
    "http://json-schema.org/draft-07/schema#", "http://json-schema.org/draft-07/schema",
    "https://json-schema.org/draft/2020-12/schema",
})
_LOCK = threading.Lock()
_COMPILED: dict[str, Any] = {}
_META: list[Any] = []


def portable(schema: Any, top: bool = True) -> bool:
    """Whether ``schema`` uses only keywords that draft-07 and 2020-12 read alike."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or not set(schema) <= _PLAIN | _NESTED:
        return False
    if "$schema" in schema and (not top or schema["$schema"] not in _DRAFTS):
        return False
    if "$id" in schema and not top:
        return False
    for key in _ONE & schema.keys():
        if not portable(schema[key], False):
            return False
    for key in _MANY & schema.keys():
        items = schema[key]
        if not isinstance(items, list) or not all(portable(s, False) for s in items):
            return False
    for key in _MAP & schema.keys():
        found = schema[key]
        if not isinstance(found, dict) or not all(portable(s, False) for s in found.values()):
            return False
    return True


def _fast(schema: Any) -> Any:
    """fastjsonschema's validator of a portable schema, compiled once per process."""
    key = json.dumps(schema, sort_keys=True, default=str)
    found = _COMPILED.get(key)
    if found is None:
        import fastjsonschema

        found = fastjsonschema.compile(schema, use_formats=False, use_default=False)
        with _LOCK:
            if len(_COMPILED) > 512:
                _COMPILED.clear()
            _COMPILED[key] = found
    return found


def _passes(check: Any, value: Any) -> bool:
    import fastjsonschema

    try:
        check(value)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


class Validator:
    """A JSON Schema validator with jsonschema's ``iter_errors``/``is_valid``, built once."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self._check = _fast(schema) if portable(schema) else None
        self._full: Any = None

    def full(self) -> Any:
        """jsonschema's validator for this schema (imports jsonschema)."""
        if self._full is None:
            import jsonschema

            self._full = jsonschema.validators.validator_for(self.schema)(self.schema)
        return self._full

    def iter_errors(self, value: Any) -> Iterator[Any]:
        """jsonschema's errors for ``value``; none, at once, when the fast check accepts it."""
        if self._check is not None and _passes(self._check, value):
            return iter(())
        return iter(self.full().iter_errors(value))

    def is_valid(self, value: Any) -> bool:
        return next(self.iter_errors(value), None) is None


def _metaschema() -> Any:
    """The draft-07 metaschema (read from jsonschema_specifications' files, not imported)."""
    if not _META:
        spec = importlib.util.find_spec("jsonschema_specifications")
        folder = Path(next(iter(spec.submodule_search_locations or ()))) if spec else None
        path = folder / "schemas" / "draft7" / "metaschema.json" if folder else None
        meta = json.loads(path.read_text()) if path and path.is_file() else None
        _META.append(_fast(meta) if meta else None)
    return _META[0]


def schema_error(schema: Any) -> Any:
    """jsonschema's ``SchemaError`` if ``schema`` is not a valid JSON Schema, else None."""
    if portable(schema):
        meta = _metaschema()
        if meta is not None and _passes(meta, schema):
            return None
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return exc
    return None
