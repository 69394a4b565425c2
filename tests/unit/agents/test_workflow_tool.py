"""A workflow as an agent's tool: input schema as parameters, invalid arguments fed back,
each call a run (a child run inside a workflow)."""

import json

import fm_lab
from fm_lab.agents import Agent, workflow_tool
from fm_lab.llm import script

PRICING = {
    "id": "price_order", "description": "Price an order of items.",
    "inputs": {"type": "object", "required": ["quantity", "unit_price"], "properties": {
        "quantity": {"type": "integer", "minimum": 1}, "unit_price": {"type": "number"}}},
    "nodes": {"total": {"type": "code", "config": {
        "function": "wt_multiply", "args": {"a": "{{ inputs.quantity }}",
                                            "b": "{{ inputs.unit_price }}"}}}},
}


def _model(name):
    def reply(messages, tools):
        (spec,) = tools
        assert spec["function"]["parameters"]["required"] == ["quantity", "unit_price"]
        results = [m["content"] for m in messages if m["role"] == "tool"]
        if not results:
            return {"tool_calls": [{"name": "price_order", "arguments": {"quantity": 0}}]}
        if len(results) == 1:
            assert "invalid and the tool was not run" in results[0]
            assert "quantity" in results[0] and "unit_price" in results[0]
            return {"tool_calls": [{"name": "price_order", "arguments": {
                "quantity": 3, "unit_price": 2.5}}]}
        return f"Total: {json.loads(results[1])['total']}"
    return script(name, fn=reply)


def test_a_workflow_tool_validates_runs_and_links_its_run(tmp_path):
    store = fm_lab.Store(tmp_path / "wt.duckdb")
    fm_lab.register_function(lambda a, b: a * b, name="wt_multiply")
    agent = Agent("pricer", model=_model("pricer"),
                  tools=[workflow_tool(PRICING, store=store)])

    @fm_lab.register_function(name="ask_pricer")
    async def ask():
        return (await agent.agenerate("3 at 2.50?")).text

    run = fm_lab.run({"id": "outer", "nodes": {"ask": {"type": "code", "config": {
        "function": "ask_pricer"}}}}, store=store)
    assert run.outputs == {"ask": "Total: 7.5"}
    runs = fm_lab.runs(store=store).set_index("workflow_id")
    assert runs.loc["price_order", "parent_run_id"] == run.run_id
    assert runs.loc["price_order", "status"] == "succeeded"
    store.close()
