"""Prices per token: your overrides first, then litellm's bundled price table (read offline).

Token convention (as litellm reports usage): ``input_tokens`` counts every prompt token,
cached reads and cache writes included; ``output_tokens`` counts reasoning tokens too. So a
call costs ``(input - cached - cache_write) * input_price + cached * cache_read_price +
cache_write * cache_write_price + output * output_price``: cache hits are never charged at full
price and reasoning tokens are never charged twice.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Price:
    """USD per token."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    source: str = "override"


_OVERRIDES: dict[str, Price] = {}


def set_price(model: str, *, input_per_mtok: float, output_per_mtok: float,
              cached_input_per_mtok: float | None = None,
              cache_write_per_mtok: float | None = None) -> None:
    """Price ``model`` yourself (USD per million tokens); wins over litellm's table.

    >>> set_price("my-finetune", input_per_mtok=1.0, output_per_mtok=4.0)
    >>> price_of("my-finetune").output
    4e-06
    """
    per = 1_000_000
    _OVERRIDES[model] = Price(
        input_per_mtok / per, output_per_mtok / per,
        None if cached_input_per_mtok is None else cached_input_per_mtok / per,
        None if cache_write_per_mtok is None else cache_write_per_mtok / per)


@functools.lru_cache(maxsize=1)
def _litellm_table() -> dict[str, dict[str, Any]]:
    """litellm's bundled price table, read from its JSON file (importing litellm takes ~2 s;
    falls back to the import when the file is not where litellm ships it)."""
    spec = importlib.util.find_spec("litellm")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "model_prices_and_context_window_backup.json"
        if path.exists():
            table: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
            for name, entry in list(table.items()):  # aliases point at another entry
                target = entry.get("alias_of") if isinstance(entry, dict) else None
                if target and target in table:
                    table[name] = {**table[target], **entry}
            return table
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return dict(litellm.model_cost)


def price_of(model: str | None) -> Price | None:
    """The price of ``model`` (None when nobody prices it, e.g. offline models)."""
    if not model:
        return None
    if model in _OVERRIDES:
        return _OVERRIDES[model]
    if model.startswith("offline/"):
        return None
    table = _litellm_table()
    entry = table.get(model) or table.get(model.split("/", 1)[-1])
    if not entry or "input_cost_per_token" not in entry:
        return None
    return Price(float(entry["input_cost_per_token"]),
                 float(entry.get("output_cost_per_token", 0.0)),
                 entry.get("cache_read_input_token_cost"),
                 entry.get("cache_creation_input_token_cost"), "litellm")


def voice_cost(model: str | None, *, seconds_in: float = 0.0, seconds_out: float = 0.0,
               characters: int = 0) -> float | None:
    """What a voice call cost by litellm's table: audio in and out per second, text per
    character (None when nobody prices ``model``, e.g. offline models).

    >>> round(voice_cost("whisper-1", seconds_in=60.0), 4)
    0.006
    """
    if not model or model.startswith("offline/"):
        return None
    table = _litellm_table()
    entry = table.get(model) or table.get(model.split("/", 1)[-1]) or {}
    rates = [entry.get(k) for k in ("input_cost_per_second", "output_cost_per_second",
                                    "input_cost_per_character")]
    if all(rate is None for rate in rates):
        return None
    per_in, per_out, per_char = (float(rate or 0.0) for rate in rates)
    return seconds_in * per_in + seconds_out * per_out + characters * per_char


def price_frame(models: list[str], price_as: str | None = None) -> pd.DataFrame:
    """One row per model with per-token prices (all priced as ``price_as`` when given)."""
    import pandas as pd

    if price_as is not None and price_of(price_as) is None:
        raise LookupError(f"no price known for {price_as!r}; set one with fm_lab.set_price()")
    rows = []
    for model in models:
        price = price_of(price_as or model)
        if price is None:
            continue
        rows.append({"model": model, "input_price": price.input, "output_price": price.output,
                     "cache_read_price": price.cache_read if price.cache_read is not None
                     else price.input,
                     "cache_write_price": price.cache_write if price.cache_write is not None
                     else price.input})
    columns = ["model", "input_price", "output_price", "cache_read_price", "cache_write_price"]
    return pd.DataFrame(rows, columns=columns).astype(
        {c: "float64" for c in columns[1:]} | {"model": "object"})
