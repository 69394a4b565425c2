"""The fast JSON Schema path agrees with jsonschema and falls back to it."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from fm_lab.spec.schemas import Validator, portable, schema_error

PERSON = {"type": "object", "required": ["name"],
          "properties": {"name": {"type": "string", "minLength": 1},
                         "age": {"type": "integer", "minimum": 0},
                         "tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
          "additionalProperties": False}


@pytest.mark.parametrize("schema, expected", [
    (PERSON, True),
    ({"anyOf": [{"type": "string"}, {"const": 1}]}, True),
    ({"$ref": "#/$defs/x", "$defs": {"x": {"type": "string"}}}, False),
    ({"prefixItems": [{"type": "string"}]}, False),
    ({"items": [{"type": "string"}]}, False),
    ({"multipleOf": 0.1}, False),
    ({"$schema": "http://json-schema.org/draft-04/schema#"}, False),
    ({"properties": {"a": {"$schema": "https://json-schema.org/draft/2020-12/schema"}}}, False),
])
def test_portable(schema: dict[str, Any], expected: bool) -> None:
    assert portable(schema) is expected


@pytest.mark.parametrize("schema", [PERSON, {"multipleOf": 0.1},
                                    {"prefixItems": [{"type": "string"}]}])
@pytest.mark.parametrize("value", [{"name": "x", "age": 3, "tags": ["a"]}, {"age": -1},
                                   {"name": "x", "other": 1}, {"name": ""}, 0.3, ["x"],
                                   [1], {"name": "x", "age": True}, {"name": "x", "age": 1.0}])
def test_same_verdict_and_errors_as_jsonschema(schema: dict[str, Any], value: Any) -> None:
    reference = jsonschema.Draft202012Validator(schema)
    ours = Validator(schema)
    assert ours.is_valid(value) == reference.is_valid(value)
    assert [e.message for e in ours.iter_errors(value)] == [
        e.message for e in reference.iter_errors(value)]


def test_fast_path_fills_in_no_defaults() -> None:
    value: dict[str, Any] = {}
    assert Validator({"properties": {"a": {"default": 1}}}).is_valid(value)
    assert value == {}


def test_schema_error_reports_jsonschemas_error() -> None:
    assert schema_error(PERSON) is None
    error = schema_error({"type": "strin"})
    assert isinstance(error, jsonschema.SchemaError)
    assert schema_error({"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {}}}) is None
