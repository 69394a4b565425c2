"""fm_lab.batch.map on the local executor: results per row, resume, error policies."""

from __future__ import annotations

import pandas as pd
import pytest

import fm_lab
import fm_lab.batch
from fm_lab.tracing.pricing import set_price

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)


def _workflow(function: str) -> dict:
    return {
        "id": "sweep",
        "inputs": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
        "nodes": {
            "calc": {"type": "code", "config": {"function": function,
                                                "args": {"x": "{{ inputs.x }}"}}},
            "ask": {"type": "llm", "config": {"model": "offline/sweep-echo",
                                              "prompt": "value {{ nodes.calc.output }}"}},
        },
        "edges": ["calc -> ask"],
    }


@pytest.fixture
def calls(register):
    seen: list[int] = []
    bad: set[int] = set()

    def triple(x: int) -> int:
        seen.append(x)
        if x in bad:
            raise ValueError(f"x={x} is bad")
        return x * 3

    return seen, bad, register(triple)


def test_map_returns_inputs_outputs_status_tokens_and_cost(store, calls):
    _, bad, name = calls
    bad.add(2)
    set_price("offline/sweep-echo", input_per_mtok=1_000_000.0, output_per_mtok=2_000_000.0)
    frame = pd.DataFrame({"x": [1, 2, 3]}, index=["a", "b", "c"])
    out = fm_lab.batch.map(_workflow(name), frame, store=store, batch_id="m1")
    assert list(out.index) == ["a", "b", "c"] and out.attrs["batch_id"] == "m1"
    assert list(out["x"]) == [1, 2, 3]
    assert list(out["status"]) == ["succeeded", "failed", "succeeded"]
    assert out.loc["a", "outputs"] == {"ask": "(offline) value 3"}
    assert out.loc["c", "outputs"]["ask"] == "(offline) value 9"
    assert "x=2 is bad" in out.loc["b", "error"]["message"]
    assert (out.loc[["a", "c"], "input_tokens"] > 0).all()
    expected = out["input_tokens"] * 1.0 + out["output_tokens"] * 2.0
    assert out["cost_usd"].tolist() == pytest.approx(expected.tolist())
    assert out.loc["b", "cost_usd"] == 0
    assert (out["duration_ms"] > 0).all()
    # every run hangs under its item span in the item's own trace
    tree = fm_lab.trace(out.loc["a", "run_id"], store=store)
    assert tree.iloc[0]["kind"] == "batch_item" and tree.iloc[0]["depth"] == 0
    assert tree.loc[tree["kind"] == "workflow", "depth"].tolist() == [1]
    by_trace = fm_lab.usage("trace", batch_id="m1", store=store)
    assert sorted(by_trace["calls"]) == [1, 1]


def test_rerun_of_a_batch_retries_only_the_failed_items(store, calls):
    seen, bad, name = calls
    bad.update({1, 3})
    records = [{"x": i} for i in range(5)]
    first = fm_lab.batch.map(_workflow(name), records, store=store, batch_id="m2")
    assert list(first["status"]) == ["succeeded", "failed", "succeeded", "failed", "succeeded"]
    seen.clear()
    bad.clear()
    second = fm_lab.batch.map(_workflow(name), records, store=store, batch_id="m2")
    assert sorted(seen) == [1, 3]  # finished items were not run again
    assert (second["status"] == "succeeded").all()
    assert list(second["attempts"]) == [1, 2, 1, 2, 1]
    # the retried items resumed their run (same run id), not started another
    assert list(second["run_id"]) == list(first["run_id"])


def test_half_done_batch_resumes_with_the_rest(store, calls):
    seen, _, name = calls
    records = [{"x": i} for i in range(8)]
    done: list[str] = []

    def stop_after_three(item: fm_lab.batch.Item) -> None:
        done.append(item.key)
        if len(done) == 3:
            raise KeyboardInterrupt  # the user stops the batch

    with pytest.raises(KeyboardInterrupt):
        fm_lab.batch.map(_workflow(name), records, store=store, batch_id="m3", concurrency=1,
                         on_item=stop_after_three)
    assert sorted(seen) == [0, 1, 2]
    seen.clear()
    out = fm_lab.batch.map(_workflow(name), records, store=store, batch_id="m3", concurrency=3)
    assert sorted(seen) == [3, 4, 5, 6, 7]
    assert (out["status"] == "succeeded").all() and len(out) == 8


def test_on_error_raise_stops_at_the_first_failure(store, calls):
    seen, bad, name = calls
    bad.add(1)
    with pytest.raises(fm_lab.batch.BatchItemError, match="item '1' failed"):
        fm_lab.batch.map(_workflow(name), [{"x": i} for i in range(6)], store=store,
                         batch_id="m4", concurrency=1, on_error="raise")
    assert sorted(seen) == [0, 1]
    status = fm_lab.batch.status("m4", store=store)
    assert list(status["status"]) == ["succeeded", "failed"]


def test_invalid_rows_are_collected_and_bad_arguments_are_clear(store, calls):
    _, _, name = calls
    out = fm_lab.batch.map(_workflow(name), [{"x": 1}, {"x": "not a number"}], store=store,
                           batch_id="m5")
    assert list(out["status"]) == ["succeeded", "failed"]
    assert out.iloc[1]["error"]["kind"] == "validation"
    assert pd.isna(out.iloc[1]["run_id"])
    with pytest.raises(ValueError, match="on_error"):
        fm_lab.batch.map(_workflow(name), [{"x": 1}], store=store, on_error="ignore")
    with pytest.raises(ValueError, match="ran with parameters"):
        fm_lab.batch.map(_workflow(name), [{"x": 7}, {"x": 1}], store=store, batch_id="m5")
    with pytest.raises(ValueError, match="needs a store its workers can reach"):
        fm_lab.batch.map(_workflow(name), [{"x": 1}], store=fm_lab.Store(":memory:"),
                         executor="dask")
    with pytest.raises(KeyError, match="no batch"):
        fm_lab.batch.status("nope", store=store)


async def test_map_works_inside_a_running_event_loop(store, calls):
    """As in a notebook: run_sync moves the sweep to a worker thread."""
    _, _, name = calls
    out = fm_lab.batch.map(_workflow(name), [{"x": 1}, {"x": 2}], store=store)
    assert list(out["status"]) == ["succeeded", "succeeded"]
