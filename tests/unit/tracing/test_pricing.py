"""Prices (overrides, then litellm's bundled table, read offline) and the cost convention of
``fm_lab.usage``: cached reads at the cache-read price, reasoning tokens inside output tokens."""

from __future__ import annotations

import datetime as dt
import os

import pytest

import fm_lab
from fm_lab.spec.models import Workflow
from fm_lab.store.duckdb_store import Store
from fm_lab.tracing import pricing
from fm_lab.tracing.pricing import Price, price_frame, price_of, set_price

WF = Workflow.from_dict({"id": "w", "nodes": {"a": {"type": "template",
                                                    "config": {"template": "x"}}}})


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch):
    monkeypatch.setattr(pricing, "_OVERRIDES", {})


@pytest.fixture
def table():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch prices online
    import litellm

    return litellm.model_cost


def test_prices_come_from_litellms_local_table(table):
    for model in ("gpt-4o", "gpt-4o-mini"):
        entry = table[model]
        assert price_of(model) == Price(
            entry["input_cost_per_token"], entry["output_cost_per_token"],
            entry["cache_read_input_token_cost"], entry.get("cache_creation_input_token_cost"),
            "litellm")


def test_a_provider_prefix_is_understood(table):
    assert price_of("openai/gpt-4o").input == table["gpt-4o"]["input_cost_per_token"]


def test_unknown_and_offline_models_have_no_price():
    assert price_of(None) is None
    assert price_of("") is None
    assert price_of("offline/echo") is None
    assert price_of("no-such-model-anywhere-42") is None


def test_an_override_wins_over_the_table_and_is_per_million_tokens():
    set_price("gpt-4o", input_per_mtok=1.0, output_per_mtok=4.0, cached_input_per_mtok=0.5)
    assert price_of("gpt-4o") == Price(1e-6, 4e-6, 5e-7, None, "override")
    set_price("offline/echo", input_per_mtok=2.0, output_per_mtok=2.0)
    assert price_of("offline/echo").input == pytest.approx(2e-6)


def test_price_frame_falls_back_to_the_input_price_for_cache_prices():
    set_price("mine", input_per_mtok=3.0, output_per_mtok=6.0)
    frame = price_frame(["mine", "offline/echo"]).set_index("model")
    assert list(frame.index) == ["mine"]  # unpriced models are left out
    row = frame.loc["mine"]
    assert row["cache_read_price"] == row["input_price"] == pytest.approx(3e-6)
    assert row["cache_write_price"] == pytest.approx(3e-6)


def test_price_frame_prices_every_model_as_another(table):
    frame = price_frame(["gpt-4o", "offline/echo"], price_as="gpt-4o-mini").set_index("model")
    mini = table["gpt-4o-mini"]
    for model in ("gpt-4o", "offline/echo"):
        assert frame.loc[model, "input_price"] == mini["input_cost_per_token"]
        assert frame.loc[model, "cache_read_price"] == mini["cache_read_input_token_cost"]
    with pytest.raises(LookupError, match="no price known"):
        price_frame(["gpt-4o"], price_as="offline/echo")


# ---- the cost convention, on spans written straight into a store ----------------------------

def _noon(days_ago: int) -> float:
    today = dt.datetime.now(dt.UTC).date()
    day = today - dt.timedelta(days=days_ago)
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp()


def _llm(n: int, model: str, started: float, **tokens: int) -> dict:
    return {"k": "span", "trace": "ab" * 16, "span": f"{n:016x}", "parent": None, "run": "r1",
            "kind": "llm", "name": "chat", "started": started, "ended": started + 1,
            "status": "ok", "model": model, **tokens}


@pytest.fixture
def spans_store():
    store = Store(":memory:")
    start = Store.start_record("r1", WF, {})
    records = [
        start,
        _llm(1, "gpt-4o", _noon(2), input_tokens=1000, output_tokens=500, cached_tokens=200,
             reasoning_tokens=100),
        _llm(2, "gpt-4o-mini", _noon(2), input_tokens=2000, output_tokens=300,
             cached_tokens=1500),
        _llm(3, "gpt-4o", _noon(0), input_tokens=300, output_tokens=40, reasoning_tokens=20),
        _llm(4, "offline/echo", _noon(0), input_tokens=50, output_tokens=50),
        {**_llm(5, "gpt-4o", _noon(0), input_tokens=999), "kind": "tool"},  # not an LLM call
    ]
    for seq, record in enumerate(records, 1):
        record["seq"] = seq
    store.ingest("r1", records)
    yield store
    store.close()


def _cost(table, model, input_tokens, output_tokens, cached_tokens=0):
    entry = table[model]
    return ((input_tokens - cached_tokens) * entry["input_cost_per_token"]
            + cached_tokens * entry["cache_read_input_token_cost"]
            + output_tokens * entry["output_cost_per_token"])


def test_cost_per_model_charges_cache_hits_at_the_cache_price_and_reasoning_once(
        spans_store, table):
    frame = fm_lab.usage(by="model", store=spans_store).set_index("model")
    assert set(frame.index) == {"gpt-4o", "gpt-4o-mini", "offline/echo"}
    big = frame.loc["gpt-4o"]
    assert (big["calls"], big["input_tokens"], big["output_tokens"], big["cached_tokens"],
            big["reasoning_tokens"]) == (2, 1300, 540, 200, 120)
    # (1000 - 200) * 2.5e-6 + 200 * 1.25e-6 + 500 * 1e-5  +  300 * 2.5e-6 + 40 * 1e-5
    assert big["cost_usd"] == pytest.approx(
        _cost(table, "gpt-4o", 1000, 500, 200) + _cost(table, "gpt-4o", 300, 40), rel=1e-12)
    assert big["cost_usd"] == pytest.approx(0.00725 + 0.00115, rel=1e-12)
    mini = frame.loc["gpt-4o-mini"]
    assert mini["cost_usd"] == pytest.approx(_cost(table, "gpt-4o-mini", 2000, 300, 1500),
                                             rel=1e-12)
    assert mini["cost_usd"] == pytest.approx(500 * 1.5e-7 + 1500 * 7.5e-8 + 300 * 6e-7)
    assert bool(big["priced"]) and bool(mini["priced"])
    echo = frame.loc["offline/echo"]
    assert echo["cost_usd"] == 0 and not bool(echo["priced"])


def test_cost_per_day(spans_store, table):
    frame = fm_lab.usage(by="day", store=spans_store)
    frame["date"] = frame["day"].dt.date
    by_day = frame.set_index("date")
    two_days_ago = dt.datetime.fromtimestamp(_noon(2)).date()
    today = dt.datetime.fromtimestamp(_noon(0)).date()
    assert set(by_day.index) == {two_days_ago, today}
    assert by_day.loc[two_days_ago, "calls"] == 2
    assert by_day.loc[two_days_ago, "cost_usd"] == pytest.approx(
        _cost(table, "gpt-4o", 1000, 500, 200) + _cost(table, "gpt-4o-mini", 2000, 300, 1500))
    assert by_day.loc[today, "calls"] == 2
    assert by_day.loc[today, "cost_usd"] == pytest.approx(_cost(table, "gpt-4o", 300, 40))
    assert not bool(by_day.loc[today, "priced"])  # offline/echo is in today's calls


def test_cost_of_the_same_calls_on_another_model(spans_store, table):
    frame = fm_lab.usage(by="model", price_as="gpt-4o-mini", store=spans_store).set_index("model")
    assert frame.loc["gpt-4o", "cost_usd"] == pytest.approx(
        _cost(table, "gpt-4o-mini", 1000, 500, 200) + _cost(table, "gpt-4o-mini", 300, 40))
    assert frame.loc["offline/echo", "cost_usd"] == pytest.approx(
        _cost(table, "gpt-4o-mini", 50, 50))
    assert frame["priced"].all()


def test_a_price_override_changes_costs(spans_store):
    set_price("offline/echo", input_per_mtok=1.0, output_per_mtok=3.0)
    set_price("gpt-4o-mini", input_per_mtok=1.0, output_per_mtok=2.0, cached_input_per_mtok=0.1)
    frame = fm_lab.usage(by="model", store=spans_store).set_index("model")
    assert frame.loc["offline/echo", "cost_usd"] == pytest.approx((50 * 1.0 + 50 * 3.0) / 1e6)
    assert bool(frame.loc["offline/echo", "priced"])
    assert frame.loc["gpt-4o-mini", "cost_usd"] == pytest.approx(
        (500 * 1.0 + 1500 * 0.1 + 300 * 2.0) / 1e6)


def test_unknown_group_is_refused(spans_store):
    with pytest.raises(ValueError, match="cannot group usage by"):
        fm_lab.usage(by="colour", store=spans_store)
