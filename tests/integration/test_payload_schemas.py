"""Suspend payload schemas: a node type (or ``ctx.suspend``) declares the JSON schema of what it
shows while suspended; a payload that breaks it fails the node with a clear error, a good one
is stored with the suspension (memory, DuckDB and PostgreSQL stores) and reaches the widget."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

import fm_lab
from fm_lab.nodes.base import NodeContext, NodeType
from fm_lab.nodes.registry import NodeRegistry, default_registry
from fm_lab.widget.convert import pending_rows, result_rows


class Invoice(BaseModel):
    vendor: str
    amount: float


class ReviewInvoice(NodeType):
    """Shows an invoice (its payload schema: the node type's) and waits for a yes or no."""

    type_name = "review_invoice"
    payload_schema = Invoice
    cacheable = False

    class Config(BaseModel):
        vendor: Any
        amount: Any

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        return await ctx.suspend({"vendor": self.config.vendor, "amount": self.config.amount})


class AskWithOwnSchema(NodeType):
    """Declares its payload schema on the call."""

    type_name = "ask_own_schema"
    cacheable = False

    class Config(BaseModel):
        question: Any

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        schema = {"type": "object", "required": ["question"],
                  "properties": {"question": {"type": "string", "title": "Question"}}}
        return await ctx.suspend({"question": self.config.question}, payload_schema=schema)


def _registry() -> NodeRegistry:
    registry = NodeRegistry()
    for name in default_registry().names():
        found = default_registry().lookup(name)
        assert found is not None
        registry.register(found, name)
    registry.register(ReviewInvoice)
    registry.register(AskWithOwnSchema)
    return registry


def _one(node_type: str, config: dict) -> dict:
    return {"id": f"wf_{node_type}", "nodes": {"ask": {"type": node_type, "config": config}}}


def test_a_payload_that_breaks_the_schema_is_a_clear_node_error(each_store):
    run = fm_lab.run(_one("review_invoice", {"vendor": "ACME", "amount": "lots"}),
                     store=each_store, registry=_registry())

    assert run.status == "failed"
    assert run.error["node"] == "ask"
    assert run.error["kind"] == "validation"
    message = run.error["message"]
    assert "does not match its payload schema" in message and "payload.amount" in message
    assert fm_lab.pending(store=each_store).empty


def test_the_schema_is_stored_with_the_suspension(each_store):
    registry = _registry()
    typed = fm_lab.run(_one("review_invoice", {"vendor": "ACME", "amount": 12.5}),
                       store=each_store, registry=registry)
    own = fm_lab.run(_one("ask_own_schema", {"question": "ok?"}), store=each_store,
                     registry=registry)
    assert typed.status == own.status == "suspended"

    rows = fm_lab.pending(store=each_store).set_index("run_id")
    assert rows.loc[typed.run_id, "payload_schema"] == Invoice.model_json_schema()
    assert rows.loc[own.run_id, "payload_schema"]["properties"]["question"]["title"] == "Question"
    [item] = pending_rows(each_store, typed.run_id, result_rows(typed))
    assert item["payload_schema"]["required"] == ["vendor", "amount"]
    assert item["payload"] == {"vendor": "ACME", "amount": 12.5}

    done = fm_lab.resume(typed.run_id, {"ok": True}, label="ask", store=each_store,
                         registry=registry)
    assert done.status == "succeeded", done.error


def test_approval_declares_what_it_shows(each_store):
    run = fm_lab.run(_one("approval", {"message": "Pay?"}), store=each_store)

    [schema] = fm_lab.pending(run.run_id, store=each_store)["payload_schema"]
    assert schema["required"] == ["message"]
    assert set(schema["properties"]) == {"message", "details"}


def test_the_event_stream_carries_the_schema(store_path):
    from fm_lab.engine.events import NodeSuspended

    events = list(fm_lab.stream(_one("approval", {"message": "Pay?"}),
                                store=fm_lab.Store(store_path)))

    [waiting] = [e for e in events if isinstance(e, NodeSuspended)]
    assert waiting.payload == {"message": "Pay?", "details": None}
    assert waiting.payload_schema["required"] == ["message"]


def test_a_suspension_without_a_schema_stores_none(each_store):
    run = fm_lab.run(_one("wait_for_event", {"event": "paid"}), store=each_store)

    assert fm_lab.pending(run.run_id, store=each_store)["payload_schema"].tolist() == [None]
