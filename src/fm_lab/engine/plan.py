"""A validated workflow prepared for execution: adjacency, node classes, static configs."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from fm_lab.engine.errors import StateValidationError
from fm_lab.engine.templating import has_templates
from fm_lab.spec.errors import ValidationIssue, WorkflowValidationError
from fm_lab.spec.limits import json_problem

if TYPE_CHECKING:
    from fm_lab.nodes.base import NodeType
    from fm_lab.nodes.registry import NodeRegistry
    from fm_lab.spec.models import Edge, Workflow


class Plan:
    """Everything the scheduler needs about a workflow, computed once."""

    def __init__(self, workflow: Workflow, registry: NodeRegistry) -> None:
        workflow.validate(registry)
        self.workflow = workflow
        self.nodes = workflow.nodes
        self.incoming: dict[str, list[Edge]] = {n: [] for n in workflow.nodes}
        self.outgoing: dict[str, list[Edge]] = {n: [] for n in workflow.nodes}
        for edge in workflow.edges:
            self.incoming[edge.target].append(edge)
            self.outgoing[edge.source].append(edge)
        self.predecessors = {
            n: list(dict.fromkeys(e.source for e in edges)) for n, edges in self.incoming.items()
        }
        self.entry = list(workflow.entry) or [n for n, e in self.incoming.items() if not e]
        self.types: dict[str, type[NodeType]] = {}
        self.static_config: dict[str, BaseModel] = {}
        for node_id, node in workflow.nodes.items():
            node_type = registry.lookup(node.type)
            assert node_type is not None  # validated above
            self.types[node_id] = node_type
            if not has_templates(
                {k: v for k, v in node.config.items() if k not in node_type.raw_fields}
            ):
                self.static_config[node_id] = node_type.Config.model_validate(node.config)
        self.order = self._topological()
        self._inputs_validator = _validator(workflow.inputs)
        self._state_validator = _validator(workflow.state)

    def _topological(self) -> list[str]:
        indegree = {n: len(self.predecessors[n]) for n in self.nodes}
        queue = deque(n for n, d in indegree.items() if d == 0)
        order = []
        while queue:
            current = queue.popleft()
            order.append(current)
            for target in dict.fromkeys(e.target for e in self.outgoing[current]):
                indegree[target] -= 1
                if indegree[target] == 0:
                    queue.append(target)
        return order

    def prepare_inputs(self, inputs: dict[str, Any], *, plain: bool = False) -> dict[str, Any]:
        """Fill schema defaults and validate; raise every problem at once. ``plain``: the
        inputs must be JSON values (no sets, bytes or other objects), nested at most
        :data:`~fm_lab.spec.limits.MAX_DEPTH` levels (what a run stores as its inputs)."""
        problem = json_problem(inputs, "inputs", plain=plain)
        if problem is not None:
            raise WorkflowValidationError([ValidationIssue(*problem, "not_json")],
                                          subject="run inputs")
        result = _with_defaults(self.workflow.inputs, inputs)
        if self._inputs_validator is not None:
            issues = schema_issues(self._inputs_validator, result, "inputs")
            if issues:
                raise WorkflowValidationError(issues, subject="run inputs")
        return result

    def initial_state(self) -> dict[str, Any]:
        """The state before any node ran: the state schema's defaults."""
        return _with_defaults(self.workflow.state, {})

    def check_state(self, state: dict[str, Any], node_id: str) -> None:
        """Raise :class:`StateValidationError` if ``state`` breaks the state schema."""
        if self._state_validator is None:
            return
        issues = schema_issues(self._state_validator, state, "state")
        if issues:
            raise StateValidationError(
                f"node {node_id!r} set an invalid state: " + "; ".join(str(i) for i in issues)
            )


def _validator(schema: dict[str, Any]) -> Any:
    if not schema:
        return None
    from fm_lab.spec.schemas import Validator

    return Validator(schema)


def schema_issues(validator: Any, value: Any, root: str) -> list[ValidationIssue]:
    issues = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            # jsonschema reports each missing name apart, each error listing all of them
            issues += [ValidationIssue(f"{root}{path}.{name}", "required but missing", "required")
                       for name in error.validator_value if name not in error.instance]
            continue
        issues.append(ValidationIssue(f"{root}{path}", error.message, str(error.validator)))
    return list(dict.fromkeys(issues))


def _with_defaults(schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    result = dict(values)
    for key, prop in (schema.get("properties") or {}).items():
        if key not in result and isinstance(prop, dict) and "default" in prop:
            result[key] = prop["default"]
    return result
