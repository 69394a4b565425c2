"""Nested bodies (foreach, parallel, subflow) are validated against the registry the workflow
is validated with, not the default one (they used to be checked against the default)."""

from typing import Any

from pydantic import BaseModel, ConfigDict

from fm_lab.nodes import NodeContext, NodeRegistry, NodeType, default_registry
from fm_lab.nodes.composite import ForeachNode, ParallelNode, SubflowNode
from fm_lab.nodes.flow import InputNode
from fm_lab.spec import Workflow


class OnlyHere(NodeType):
    """A type only the custom registry knows."""

    type_name = "custom_registry_only_here"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        word: str

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        return self.config.word


def custom() -> NodeRegistry:
    registry = NodeRegistry()
    for node_type in (InputNode, ForeachNode, ParallelNode, SubflowNode, OnlyHere):
        registry.register(node_type)
    return registry


def loop(body_type: str, config: dict[str, Any]) -> Workflow:
    return Workflow.from_dict({"id": "custom", "nodes": {"loop": {"type": "foreach", "config": {
        "items": [1, 2], "node": {"type": body_type, "config": config}}}}})


def codes(issues: list[Any]) -> set[tuple[str, str]]:
    return {(issue.location, issue.code) for issue in issues}


def test_a_foreach_body_of_a_type_only_the_custom_registry_knows_is_valid_with_it() -> None:
    workflow = loop("custom_registry_only_here", {"word": "hi"})
    assert workflow.issues(custom()) == []
    assert workflow.validate(custom()) is workflow
    # the default registry does not know it, and says so where it is
    assert codes(workflow.issues(default_registry())) == {
        ("nodes.loop.config.node.type", "unknown_type")}


def test_a_body_is_checked_against_the_custom_registrys_config_model() -> None:
    assert codes(loop("custom_registry_only_here", {}).issues(custom())) == {
        ("nodes.loop.config.node.config.word", "missing")}


def test_a_type_only_the_default_registry_has_is_unknown_to_the_custom_one() -> None:
    workflow = loop("template", {"template": "hi"})
    assert workflow.issues(default_registry()) == []
    assert codes(workflow.issues(custom())) == {("nodes.loop.config.node.type", "unknown_type")}


def test_parallel_branches_and_inline_subflows_use_the_given_registry() -> None:
    only_here = {"type": "custom_registry_only_here", "config": {"word": "hi"}}
    workflow = Workflow.from_dict({"id": "custom", "nodes": {
        "fan": {"type": "parallel", "config": {"branches": {
            "a": {"node": only_here},
            "b": {"workflow": {"id": "inner", "nodes": {"x": only_here}}}}}},
        "sub": {"type": "subflow", "config": {"workflow": {"id": "inner2", "nodes": {
            "y": {"type": "template", "config": {"template": "hi"}}}}}},
    }})
    assert codes(workflow.issues(custom())) == {
        ("nodes.sub.config.workflow.nodes.y.type", "unknown_type")}
    assert codes(workflow.issues(default_registry())) == {
        ("nodes.fan.config.branches.a.node.type", "unknown_type"),
        ("nodes.fan.config.branches.b.workflow.nodes.x.type", "unknown_type")}


class OldCheck(NodeType):
    """A type whose ``check`` predates the registry argument still works."""

    type_name = "custom_registry_old_check"

    class Config(BaseModel):
        n: int = 0

    @classmethod
    def check(cls, config: dict[str, Any], location: str) -> list[Any]:  # type: ignore[override]
        return []

    def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        return None


def test_a_check_without_the_registry_argument_is_still_called() -> None:
    registry = custom()
    registry.register(OldCheck)
    workflow = Workflow.from_dict({"id": "old", "nodes": {
        "o": {"type": "custom_registry_old_check", "config": {}}}})
    assert workflow.issues(registry) == []
