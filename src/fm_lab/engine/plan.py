"""A validated workflow prepared for execution: adjacency, node classes, static configs.

:meth:`Plan.cached` keeps the validated part of a plan per (workflow content, registry), so
that running the same workflow again skips validation, config parsing and schema compiling.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from fm_lab.engine.errors import StateValidationError
from fm_lab.engine.templating import has_templates
from fm_lab.security.policy import current_policy
from fm_lab.spec.errors import ValidationIssue, WorkflowValidationError
from fm_lab.spec.limits import json_problem

if TYPE_CHECKING:
    from fm_lab.nodes.base import NodeType
    from fm_lab.nodes.registry import NodeRegistry
    from fm_lab.spec.models import Edge, Workflow


PLAN_CACHE_SIZE = 64  # validated plans kept per process (least recently used dropped)


@dataclass
class _Validated:
    """What a plan derives from a workflow's content and its registry's node types: kept in
    the plan cache, shared by every plan of the same content (read-only)."""

    registry: NodeRegistry
    types: dict[str, type[NodeType]]
    configs: dict[str, type[BaseModel]]  # each type's Config class when validated
    static_config: dict[str, BaseModel]
    order: list[str]
    inputs_validator: Any
    state_validator: Any

    def fits(self, registry: NodeRegistry, workflow: Workflow) -> bool:
        """True while ``registry`` resolves every node to the same class and Config as at
        validation (a node type registered again, e.g. a re-run notebook cell, misses)."""
        if registry is not self.registry:
            return False
        for node_id, node in workflow.nodes.items():
            node_type = registry.lookup(node.type)
            if node_type is not self.types[node_id] or node_type.Config is not self.configs[
                node_id
            ]:
                return False
        return True


_PLANS: OrderedDict[tuple[int, tuple[str, tuple[str, ...]], str], _Validated] = OrderedDict()
_PLANS_LOCK = threading.Lock()


def clear_plan_cache() -> None:
    """Forget every cached plan."""
    with _PLANS_LOCK:
        _PLANS.clear()


class Plan:
    """Everything the scheduler needs about a workflow, computed once."""

    def __init__(self, workflow: Workflow, registry: NodeRegistry) -> None:
        workflow.validate(registry)
        self._adjacency(workflow)
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

    @classmethod
    def cached(cls, workflow: Workflow, registry: NodeRegistry) -> Plan:
        """The plan of ``workflow``, validated once per (content, registry): a workflow
        equal in content to one planned before (the same object or not) reuses its
        validation, parsed static configs, order and schema validators; one edited in
        place (``update_from``, a changed config) has another content and is validated
        afresh. Validity depends on the execution policy in force too (what a workflow may
        name), so plans are kept per policy. Raises :class:`WorkflowValidationError` like
        :class:`Plan`."""
        try:
            key = (id(registry), current_policy().key, workflow.model_dump_json())
        except ValueError:  # a config holding a non-JSON value: plan it every time
            return cls(workflow, registry)
        with _PLANS_LOCK:
            validated = _PLANS.get(key)
            if validated is not None:
                _PLANS.move_to_end(key)
        if validated is not None and validated.fits(registry, workflow):
            return cls._bound(workflow, validated)
        # validated from a private copy: later edits of the caller's object (nested dicts
        # included) cannot reach what is cached
        own = workflow.model_copy(deep=True)
        plan = cls(own, registry)
        if all(_plain_check(t) for t in plan.types.values()):  # else validity is not ours
            entry = _Validated(registry, plan.types,
                               {n: t.Config for n, t in plan.types.items()},
                               plan.static_config, plan.order,
                               plan._inputs_validator, plan._state_validator)
            with _PLANS_LOCK:
                _PLANS[key] = entry
                while len(_PLANS) > PLAN_CACHE_SIZE:
                    _PLANS.popitem(last=False)
            return cls._bound(workflow, entry)
        plan._adjacency(workflow)
        return plan

    @classmethod
    def _bound(cls, workflow: Workflow, validated: _Validated) -> Plan:
        """A plan of ``workflow`` (whose content was validated) from the cached part."""
        plan = cls.__new__(cls)
        plan._adjacency(workflow)
        plan.types = dict(validated.types)
        plan.static_config = validated.static_config  # read-only, as within a run
        plan.order = list(validated.order)
        plan._inputs_validator = validated.inputs_validator
        plan._state_validator = validated.state_validator
        return plan

    def _adjacency(self, workflow: Workflow) -> None:
        """Bind the plan to ``workflow``: its nodes, edges and entry nodes."""
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

    return Validator(copy.deepcopy(schema))  # its own copy: a cached plan outlives the dict


def _plain_check(node_type: type[NodeType]) -> bool:
    """True if the type adds no checks of its own (composite types validate their bodies,
    whose node types the cache's registry check does not see)."""
    from fm_lab.nodes.base import NodeType

    return getattr(node_type.check, "__func__", None) is getattr(NodeType.check, "__func__", 0)


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
