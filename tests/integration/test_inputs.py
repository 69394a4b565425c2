"""Run inputs are validated against the workflow's inputs schema before anything is stored."""

from __future__ import annotations

import json

import pytest

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

INPUTS = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD"], "default": "EUR"},
        "customer": {"type": "string"},
        "rush": {"type": "boolean", "default": False},
    },
    "required": ["amount", "customer"],
}


def _pricing() -> fm_lab.Workflow:
    b = fm_lab.WorkflowBuilder("pricing", inputs=INPUTS)
    b.node(
        "quote",
        "template",
        template="{{ inputs.customer }}: {{ inputs.amount }} {{ inputs.currency }}",
    )
    b.node("flags", "template", template="{{ inputs.rush }}")
    return b.build()


def test_invalid_inputs_report_every_problem_before_a_run_is_stored(store_path):
    store = fm_lab.Store(store_path)
    with pytest.raises(fm_lab.WorkflowValidationError) as caught:
        fm_lab.run(
            _pricing(), inputs={"amount": "ten", "currency": "GBP", "rush": "yes"}, store=store
        )

    err = caught.value
    by_location = {issue.location: issue for issue in err.issues}
    assert {"inputs.amount", "inputs.currency", "inputs.rush"} <= set(by_location)
    assert "'ten' is not of type 'number'" in by_location["inputs.amount"].message
    assert "GBP" in by_location["inputs.currency"].message
    # the missing required key is reported too, naming the key
    assert by_location["inputs.customer"].message == "required but missing"
    assert len(err.issues) == 4
    text = str(err)
    for location in ("inputs.amount", "inputs.currency", "inputs.rush"):
        assert location in text
    # nothing was stored: no run row, no journal
    assert fm_lab.Store(store_path).runs().empty
    assert store.runs().empty
    assert not list(store.journal_dir.glob("*.journal"))


def test_out_of_range_value_is_located(store):
    with pytest.raises(fm_lab.WorkflowValidationError) as caught:
        fm_lab.run(_pricing(), inputs={"amount": -1, "customer": "ACME"}, store=store)
    assert [i.location for i in caught.value.issues] == ["inputs.amount"]
    assert store.runs().empty


def test_schema_defaults_are_filled(store):
    run = fm_lab.run(_pricing(), inputs={"amount": 12.5, "customer": "ACME"}, store=store)

    assert run.status == "succeeded", run.error
    assert run.outputs == {"quote": "ACME: 12.5 EUR", "flags": False}
    stored = store.runs().set_index("run_id").loc[run.run_id]
    assert json.loads(stored["inputs"]) == {
        "amount": 12.5,
        "customer": "ACME",
        "currency": "EUR",
        "rush": False,
    }


def test_given_values_win_over_defaults(store):
    run = fm_lab.run(
        _pricing(),
        inputs={"amount": 3, "customer": "Bo", "currency": "USD", "rush": True},
        store=store,
    )
    assert run.outputs == {"quote": "Bo: 3 USD", "flags": True}
