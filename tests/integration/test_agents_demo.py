"""The quickstart demo's agent node: a support agent with a tool and a sub-agent, offline."""

from pathlib import Path

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_agent_proposes_the_next_step_with_its_tool_and_sub_agent(store):
    run = fm_lab.run(ROOT / "examples/quickstart.flow.yaml",
                     {"review": "Broken again! I want a refund.", "customer": "Ada",
                      "tier": "pro"}, store=store)
    assert run.status == "succeeded", run.error
    assert run.outputs["triage"]["next_step"] == (
        "Call Ada back (next business day) and offer a 10 EUR credit. Policy: Pro customers "
        "may get a refund within 14 days of purchase.")
    assist = run.node("assist").output
    assert [c["name"] for c in assist["tool_calls"]] == ["account_status", "policy"]
    assert set(assist["usage_by_agent"]) == {"support", "policy"}
    usage = fm_lab.usage("agent", store=store).set_index("agent")["calls"].to_dict()
    assert usage["support"] == 2 and usage["policy"] == 1
