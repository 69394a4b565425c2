"""The cache of validated plans: one validation per (workflow content, registry)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

import fm_lab
import fm_lab.spec.validate as validate_module
from fm_lab.engine import plan as plan_module
from fm_lab.engine.plan import Plan, clear_plan_cache
from fm_lab.nodes import NodeRegistry, NodeType, default_registry
from fm_lab.spec.errors import WorkflowValidationError
from fm_lab.spec.models import Workflow

SPEC: dict[str, Any] = {
    "id": "cached",
    "inputs": {"type": "object", "properties": {"name": {"type": "string", "default": "x"}}},
    "nodes": {
        "a": {"type": "template", "config": {"template": "a"}},
        "b": {"type": "template", "config": {"template": "b"}},
    },
    "edges": [{"source": "a", "target": "b"}],
}


def _load(spec: dict[str, Any]) -> Workflow:
    return Workflow.from_dict(copy.deepcopy(spec))  # from_dict keeps the nested dicts


@pytest.fixture(autouse=True)
def checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """An empty plan cache, and the ids of the workflows validated since."""
    clear_plan_cache()
    seen: list[str] = []
    original = validate_module.check

    def counted(workflow: Workflow, registry: Any = None) -> Any:
        seen.append(workflow.id)
        return original(workflow, registry)

    monkeypatch.setattr(validate_module, "check", counted)
    yield seen
    clear_plan_cache()


def test_a_hit_reuses_the_validated_plan(checks: list[str]) -> None:
    wf = _load(SPEC)
    first = Plan.cached(wf, default_registry())
    second = Plan.cached(wf, default_registry())
    third = Plan.cached(_load(SPEC), default_registry())  # equal content
    assert checks == ["cached"]  # validated once
    assert second.static_config is first.static_config
    assert third.static_config is first.static_config
    assert second.workflow is wf and third.workflow is not wf  # bound to the caller's object
    assert third.order == ["a", "b"] and third.entry == ["a"]
    assert [e.target for e in third.outgoing["a"]] == ["b"]


def test_an_in_place_edit_misses(checks: list[str]) -> None:
    wf = _load(SPEC)
    before = Plan.cached(wf, default_registry())
    edited = {**SPEC, "nodes": {**SPEC["nodes"], "b": {"type": "template",
                                                     "config": {"template": "B!"}}}}
    wf.update_from(_load(edited))
    after = Plan.cached(wf, default_registry())
    assert len(checks) == 2
    assert after.static_config["b"] is not before.static_config["b"]
    assert after.static_config["b"].template == "B!"  # type: ignore[attr-defined]
    wf.nodes["a"].config["template"] = "nested edit"  # no setattr on the workflow at all
    assert Plan.cached(wf, default_registry()).static_config["a"].template == (  # type: ignore[attr-defined]
        "nested edit")
    assert len(checks) == 3


def test_the_cached_part_is_not_the_callers_object(checks: list[str]) -> None:
    wf = _load(SPEC)
    Plan.cached(wf, default_registry())
    wf.inputs["properties"]["name"]["type"] = "integer"  # edits what was validated
    plan = Plan.cached(_load(SPEC), default_registry())
    assert plan.prepare_inputs({"name": "text"}) == {"name": "text"}  # the original schema


class _Bare(NodeRegistry):
    """A registry of what is registered on it only (no plugins' entry points)."""

    def _load_entry_points(self) -> None:
        self._entry_points_loaded = True


def test_another_registry_or_a_re_registered_type_misses(checks: list[str]) -> None:
    wf = _load({"id": "own", "nodes": {"a": {"type": "echo_once"}}})
    registry = _Bare()

    class Echo(NodeType):
        type_name = "echo_once"

        async def run(self, ctx: Any, inputs: dict[str, Any]) -> Any:
            return 1

    registry.register(Echo)
    assert Plan.cached(wf, registry).types["a"] is Echo
    assert Plan.cached(wf, registry).types["a"] is Echo
    assert checks == ["own"]
    with pytest.raises(WorkflowValidationError, match="unknown node type"):
        Plan.cached(wf, _Bare())  # another registry, without the type

    class Echo2(Echo):
        type_name = "echo_once"

    registry.register(Echo2)  # a notebook cell run again
    assert Plan.cached(wf, registry).types["a"] is Echo2
    assert checks == ["own", "own", "own"]


def test_a_cached_plan_never_lets_an_invalid_workflow_run(checks: list[str]) -> None:
    wf = _load(SPEC)
    assert fm_lab.run(wf, store=fm_lab.connect(":memory:")).status == "succeeded"
    broken = {**SPEC, "edges": [{"source": "a", "target": "nowhere"}]}
    wf.update_from(_load(broken))
    for _ in range(2):  # an invalid workflow is never cached either
        with pytest.raises(WorkflowValidationError):
            fm_lab.run(wf, store=fm_lab.connect(":memory:"))
    with pytest.raises(WorkflowValidationError):
        fm_lab.run(wf, {"name": 3}, store=fm_lab.connect(":memory:"))  # inputs still checked
    wf.update_from(_load(SPEC))
    with pytest.raises(WorkflowValidationError, match="run inputs"):
        fm_lab.run(wf, {"name": 3}, store=fm_lab.connect(":memory:"))
    assert fm_lab.run(wf, store=fm_lab.connect(":memory:")).outputs is not None


def test_composite_types_are_validated_every_time(checks: list[str]) -> None:
    body = {"id": "comp", "inputs": {"type": "object", "properties": {"xs": {"type": "array"}}},
            "nodes": {"loop": {"type": "foreach", "config": {
                "items": "{{ inputs.xs }}", "node": {"type": "template",
                                                     "config": {"template": "x"}}}}}}
    wf = _load(body)
    Plan.cached(wf, default_registry())
    Plan.cached(wf, default_registry())
    assert checks == ["comp", "comp"]  # their bodies' types are looked up elsewhere


def test_the_cache_is_bounded(checks: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_module, "PLAN_CACHE_SIZE", 2)
    for name in ("one", "two", "three"):
        Plan.cached(_load({**SPEC, "id": name}), default_registry())
    assert len(plan_module._PLANS) == 2
    Plan.cached(_load({**SPEC, "id": "one"}), default_registry())  # dropped
    assert checks == ["one", "two", "three", "one"]
