"""The agents of the quickstart demo: a support agent with a tool and a policy sub-agent.

They run on scripted offline models, or on ``$FM_LAB_MODEL`` (any litellm model, with its
key) when it is set.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from fm_lab.agents import Agent, tool
from fm_lab.llm import script

_PLANS = {
    "free": {"refund_days": 0, "callback": "none", "credit_eur": 0},
    "pro": {"refund_days": 14, "callback": "next business day", "credit_eur": 10},
    "enterprise": {"refund_days": 30, "callback": "within 4 hours", "credit_eur": 50},
}


@tool
def account_status(customer: str, tier: str) -> dict[str, Any]:
    """The customer's plan: refund window in days, callback promise, goodwill credit."""
    if tier not in _PLANS:
        raise ValueError(f"unknown tier {tier!r}; tiers: {', '.join(_PLANS)}")
    return {"customer": customer, "tier": tier, **_PLANS[tier]}


def _policy_reply(messages: list[dict[str, Any]], tools: Any) -> str:
    asked = str(messages[-1].get("content") or "")
    tier = next((t for t in _PLANS if t in asked.lower()), "free")
    days = _PLANS[tier]["refund_days"]
    if not days:
        return f"The {tier} plan has no refunds; offer help instead."
    return f"{tier.title()} customers may get a refund within {days} days of purchase."


def _support_reply(messages: list[dict[str, Any]], tools: Any) -> Any:
    results = [m for m in messages if m["role"] == "tool"]
    if not results:
        asked = next(str(m["content"]) for m in messages if m["role"] == "user")
        found = re.search(r"Customer (.+?) \((\w+)\)", asked)
        customer, tier = found.groups() if found else ("anonymous", "free")
        return {"tool_calls": [
            {"name": "account_status", "arguments": {"customer": customer, "tier": tier}},
            {"name": "policy", "arguments": {"message": f"Refund rules for the {tier} plan?"}},
        ]}
    status = json.loads(results[0]["content"])
    return (f"Call {status['customer']} back ({status['callback']}) and offer a "
            f"{status['credit_eur']} EUR credit. Policy: {results[1]['content']}")


def _model(name: str, reply: Any) -> str:
    return os.environ.get("FM_LAB_MODEL") or script(name, fn=reply)


policy = Agent("policy", "You know the refund policy of each plan. Answer in one sentence.",
               model=_model("demo-policy", _policy_reply))

support = Agent(
    "support",
    "You help a support team decide the next step for a customer. Look up the customer's "
    "plan with account_status, ask the policy agent about refunds, then answer in two "
    "sentences.",
    model=_model("demo-support", _support_reply),
    tools=[account_status],
    agents={"policy": policy},
)
