"""The llm node in a workflow: text, JSON validated against a schema, retries on bad JSON."""

import fm_lab
from fm_lab.llm import script


def _run(config, store):
    wf = {"id": "ask", "inputs": {"type": "object", "properties": {"topic": {"type": "string"}}},
          "nodes": {"ask": {"type": "llm", "config": config}}}
    return fm_lab.run(wf, {"topic": "duckdb"}, store=store)


def test_prompt_template_to_text_with_an_llm_span():
    store = fm_lab.Store(":memory:")
    model = script("facts", [("duckdb", "DuckDB is an in-process OLAP database.")])
    run = _run({"model": model, "prompt": "One fact about {{ inputs.topic }}"}, store)
    assert run.status == "succeeded", run.error
    assert run.outputs == {"ask": "DuckDB is an in-process OLAP database."}
    spans = fm_lab.trace(run.run_id, store=store)
    assert spans["kind"].tolist() == ["workflow", "node", "llm"]
    usage = fm_lab.usage("model", store=store)
    assert usage["model"].tolist() == [model] and usage["calls"].tolist() == [1]
    assert usage["cost_usd"].tolist() == [0.0] and not usage["priced"].iloc[0]


def test_invalid_json_is_sent_back_and_corrected():
    answers = iter(['{"name": "duckdb"}', '{"name": "duckdb", "stars": 30000}'])
    seen = []

    def reply(messages, tools):
        seen.append(messages[-1]["content"])
        return next(answers)

    model = script("json", fn=reply)
    schema = {"type": "object", "required": ["name", "stars"],
              "properties": {"name": {"type": "string"}, "stars": {"type": "integer"}}}
    run = _run({"model": model, "prompt": "Describe {{ inputs.topic }}",
                "output_schema": schema}, fm_lab.Store(":memory:"))
    assert run.status == "succeeded", run.error
    assert run.outputs == {"ask": {"name": "duckdb", "stars": 30000}}
    assert "'stars' is a required property" in seen[1]


def test_json_that_never_validates_fails_the_node():
    model = script("stubborn", default="not json at all")
    run = _run({"model": model, "prompt": "x", "output_schema": {"type": "object"},
                "json_retries": 1}, fm_lab.Store(":memory:"))
    assert run.status == "failed"
    assert run.error["node"] == "ask" and run.error["kind"] == "validation"
    assert "not JSON" in run.error["message"]
