"""JSON encoding of node outputs and state, keeping pandas/numpy/pydantic values usable."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import PurePath
from typing import Any

_TAG = "__fm_type__"


class NotSerialisableError(TypeError):
    """A value cannot be stored as JSON."""


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return {_TAG: "bytes", "data": base64.b64encode(value).decode()}
    module = type(value).__module__
    if module.startswith("numpy"):
        return value.tolist()
    if module.startswith("pandas"):
        if type(value).__name__ == "DataFrame":
            return {_TAG: "dataframe", "data": json.loads(value.to_json(orient="table"))}
        if type(value).__name__ == "Series":
            return value.tolist()
        if type(value).__name__ == "Timestamp":
            return value.isoformat()
    raise NotSerialisableError(
        f"a value of type {type(value).__name__} cannot be stored as JSON; return dicts, "
        "lists, strings, numbers, pydantic models, dataclasses or DataFrames"
    )


json_default = _default  # for other encoders (orjson) that take a ``default`` hook

_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False)


_CANONICAL = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False,
                              sort_keys=True)


def canonical(value: Any) -> str:
    """``value`` as JSON with sorted keys: equal values give equal text (cache keys)."""
    return _CANONICAL.encode(value)


def dumps(value: Any) -> str:
    """Encode ``value`` as compact JSON (DataFrames and bytes are tagged to come back)."""
    return _ENCODER.encode(value)


try:  # spans are encoded in bulk: orjson is ~5x the standard library
    import orjson

    def dumpb(value: Any) -> bytes:
        """``value`` as compact JSON bytes, fast (orjson; NaN and infinities become null).
        Used for span records, which are written by the thousand."""
        try:
            return orjson.dumps(value, default=_default)
        except TypeError:  # e.g. an int beyond 64 bits: the standard encoder copes
            return dumps(value).encode()

except ImportError:  # pragma: no cover - orjson is a dependency; keep working without it

    def dumpb(value: Any) -> bytes:
        """``value`` as compact JSON bytes."""
        return dumps(value).encode()


def _hook(obj: dict[str, Any]) -> Any:
    tag = obj.get(_TAG)
    if tag is None:
        return obj
    if tag == "bytes":
        return base64.b64decode(obj["data"])
    if tag == "audio":
        from fm_lab.audio import Audio

        return Audio(obj)
    if tag == "dataframe":
        import io

        import pandas as pd

        return pd.read_json(io.StringIO(json.dumps(obj["data"])), orient="table")
    return obj


def loads(text: str | None) -> Any:
    """Decode what :func:`dumps` wrote (None stays None)."""
    if text is None:
        return None
    if _TAG not in text:
        return json.loads(text)
    return json.loads(text, object_hook=_hook)
