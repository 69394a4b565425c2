"""Semantic checks of a workflow: every problem is collected, none stops the others."""

from __future__ import annotations

import functools
import inspect
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ValidationError

from fm_lab.spec.errors import ValidationIssue, pydantic_issues
from fm_lab.spec.templates import is_template, iter_templates, template_refs

if TYPE_CHECKING:
    from fm_lab.spec.models import Workflow


class NodeTypeInfo(Protocol):
    """What validation needs to know of a node type."""

    Config: ClassVar[type[BaseModel]]
    raw_fields: ClassVar[frozenset[str]]

    @classmethod
    def check(cls, config: dict[str, Any], location: str,
              registry: NodeTypeLookup | None = None) -> list[Any]: ...

    @classmethod
    def output_handles(cls, config: dict[str, Any]) -> list[str] | None: ...


class NodeTypeLookup(Protocol):
    """A registry of node types by name."""

    def lookup(self, type_name: str) -> type[NodeTypeInfo] | None: ...

    def names(self) -> list[str]: ...


# where Workflow.validate() without a registry looks node types up: spec imports nothing of
# ours, so the layer that owns the default registry (fm_lab.nodes.registry) installs it
_default_registry: Callable[[], NodeTypeLookup] | None = None


def set_default_registry(provider: Callable[[], NodeTypeLookup]) -> None:
    """Make ``provider()`` the registry :meth:`Workflow.validate` uses when given none."""
    global _default_registry
    _default_registry = provider


DEFAULT_REGISTRY_MODULE = "fm_lab.nodes.registry"
"""Installs the built-in registry when imported; imported by its module path on first use
when nothing installed one (``from fm_lab.spec import Workflow`` alone), as an entry point
would be: spec/ may not import nodes/."""


def default_registry() -> NodeTypeLookup:
    """The registry installed by :func:`set_default_registry` (the built-in one unless
    something else installed another)."""
    if _default_registry is None:
        import importlib

        importlib.import_module(DEFAULT_REGISTRY_MODULE)
    if _default_registry is None:
        raise RuntimeError("no node registry to validate against: pass registry=")
    return _default_registry()


def check(workflow: Workflow, registry: NodeTypeLookup) -> list[ValidationIssue]:
    """Return every problem in ``workflow`` (an empty list when it is valid), looking node
    types up in ``registry`` (nested bodies too)."""
    from fm_lab.spec.models import NODE_ID

    issues: list[ValidationIssue] = []
    if not workflow.nodes:
        issues.append(ValidationIssue("nodes", "a workflow needs at least one node", "empty"))
    for node_id in workflow.nodes:
        if not NODE_ID.match(node_id):
            issues.append(
                ValidationIssue(
                    f"nodes.{node_id}",
                    "a node id is letters, digits and '_' and does not start "
                    "with a digit (templates read it as nodes.<id>)",
                    "bad_id",
                )
            )
    issues += _check_schemas(workflow)
    raw_fields: dict[str, frozenset[str]] = {}
    handles = _check_nodes(workflow, registry, issues, raw_fields)
    issues += _check_edges(workflow, handles)
    upstream = _Upstream(workflow)
    issues += upstream.issues()
    issues += _check_reachable(workflow)
    issues += _check_templates(workflow, upstream, raw_fields)
    return issues


def _check_schemas(workflow: Workflow) -> list[ValidationIssue]:
    from fm_lab.spec.schemas import schema_error

    issues = []
    for name in ("inputs", "state"):
        schema = getattr(workflow, name)
        if not schema:
            continue
        exc = schema_error(schema)
        if exc is not None:
            where = ".".join(str(p) for p in exc.absolute_path)
            issues.append(
                ValidationIssue(
                    f"{name}{'.' + where if where else ''}",
                    f"not a valid JSON schema: {exc.message}",
                    "bad_schema",
                )
            )
            continue
        if schema.get("type", "object") != "object":
            issues.append(ValidationIssue(f"{name}.type", "must be 'object'", "bad_schema"))
    return issues


def _check_nodes(
    workflow: Workflow,
    registry: NodeTypeLookup,
    issues: list[ValidationIssue],
    raw_fields: dict[str, frozenset[str]],
) -> dict[str, list[str] | None]:
    handles: dict[str, list[str] | None] = {}
    for node_id, node in workflow.nodes.items():
        raw_fields[node_id] = frozenset()
        node_type = registry.lookup(node.type)
        if node_type is None:
            known = ", ".join(sorted(registry.names()))
            issues.append(
                ValidationIssue(
                    f"nodes.{node_id}.type",
                    f"unknown node type {node.type!r} (known: {known})",
                    "unknown_type",
                )
            )
            handles[node_id] = None
            continue
        location = f"nodes.{node_id}.config"
        issues += config_issues(node_type.Config, node.config, location)
        issues += type_issues(node_type, node.config, location, registry)
        issues += reference_issues(node_type, node.config, location)
        handles[node_id] = node_type.output_handles(node.config)
        raw_fields[node_id] = node_type.raw_fields
    return handles


def type_issues(node_type: type[NodeTypeInfo], config: dict[str, Any], location: str,
                registry: NodeTypeLookup) -> list[Any]:
    """``node_type.check`` with the registry its nested bodies are looked up in (a ``check``
    written before it took one is called without)."""
    if _takes_registry(node_type):
        return node_type.check(config, location, registry=registry)
    return node_type.check(config, location)


def reference_issues(node_type: type[NodeTypeInfo], config: dict[str, Any],
                     location: str) -> list[ValidationIssue]:
    """One issue per function, tool or agent ``config`` names (``NodeType.references``) that
    the execution policy in force does not allow (:mod:`fm_lab.security`)."""
    from fm_lab.security.functions import reference_problem
    from fm_lab.security.policy import current_policy

    references = getattr(node_type, "references", None)
    policy = current_policy()
    if references is None or not policy.restricted:
        return []
    issues = []
    for found in references(config):
        problem = reference_problem(found.reference, found.what, policy)
        if problem is not None:
            issues.append(ValidationIssue(f"{location}.{found.field}", problem, "policy"))
    return issues


@functools.cache
def _takes_registry(node_type: type[NodeTypeInfo]) -> bool:
    return "registry" in inspect.signature(node_type.check).parameters


def config_issues(
    config_model: type[BaseModel], config: dict[str, Any], prefix: str
) -> list[ValidationIssue]:
    """Validate ``config`` against the node type's model; templated values are checked at run
    time, once rendered, so errors on them are not reported here."""
    try:
        config_model.model_validate(config)
    except ValidationError as exc:
        kept = [err for err in exc.errors(include_url=False) if not is_template(err.get("input"))]
        if not kept:
            return []
        return pydantic_issues(ValidationError.from_exception_data(exc.title, kept), prefix)  # type: ignore[arg-type]
    return []


def _check_edges(workflow: Workflow, handles: dict[str, list[str] | None]) -> list[ValidationIssue]:
    issues = []
    seen: set[tuple[str, str, str | None]] = set()
    for index, edge in enumerate(workflow.edges):
        where = f"edges[{index}]"
        if not edge.source and not edge.target:
            continue  # an unreadable edge string, reported where it was read
        for end in ("source", "target"):
            node_id = getattr(edge, end)
            if node_id not in workflow.nodes:
                issues.append(
                    ValidationIssue(
                        f"{where}.{end}", f"edge {end} {node_id!r} is not a node", "dangling_edge"
                    )
                )
        if edge.source == edge.target:
            issues.append(
                ValidationIssue(where, "an edge cannot connect a node to itself (to repeat a "
                                "node, put it in a 'loop' node's body)", "cycle")
            )
        key = (edge.source, edge.target, edge.source_handle)
        if key in seen:
            issues.append(ValidationIssue(where, "duplicate edge", "duplicate_edge"))
        seen.add(key)
        declared = handles.get(edge.source)
        if edge.source_handle is not None and edge.source in workflow.nodes:
            if declared is None:
                issues.append(
                    ValidationIssue(
                        f"{where}.source_handle",
                        f"node {edge.source!r} has no named routes; remove the handle",
                        "bad_handle",
                    )
                )
            elif edge.source_handle not in declared:
                issues.append(
                    ValidationIssue(
                        f"{where}.source_handle",
                        f"{edge.source!r} has no route {edge.source_handle!r} "
                        f"(routes: {', '.join(declared)})",
                        "bad_handle",
                    )
                )
    for index, entry in enumerate(workflow.entry):
        if entry not in workflow.nodes:
            issues.append(
                ValidationIssue(f"entry[{index}]", f"{entry!r} is not a node", "dangling_edge")
            )
    return issues


def _graph(workflow: Workflow) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    succ: dict[str, list[str]] = {n: [] for n in workflow.nodes}
    pred: dict[str, list[str]] = {n: [] for n in workflow.nodes}
    for edge in workflow.edges:
        if edge.source in succ and edge.target in pred and edge.source != edge.target:
            succ[edge.source].append(edge.target)
            pred[edge.target].append(edge.source)
    return succ, pred


class _Upstream:
    """Answers "does ``ref`` run before ``node``?" by a backward search pruned by topological
    position: linear memory however long the graph (no ancestor set per node)."""

    def __init__(self, workflow: Workflow) -> None:
        self.succ, self.pred = _graph(workflow)
        succ = self.succ
        indegree = {n: len(p) for n, p in self.pred.items()}
        queue = deque(n for n, d in indegree.items() if d == 0)
        self.position: dict[str, int] = {}
        while queue:
            current = queue.popleft()
            self.position[current] = len(self.position)
            for nxt in succ[current]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    queue.append(nxt)
        self.cyclic = sorted(n for n, d in indegree.items() if d > 0)

    def issues(self) -> list[ValidationIssue]:
        issues = []
        for scc, path in self.cycles():
            more = "" if len(path) - 1 == len(scc) else f"; {', '.join(scc)} are all on cycles"
            issues.append(
                ValidationIssue(
                    "edges",
                    f"cycle {' -> '.join(path)}{more} (edges cannot loop: repeat work with a "
                    "'loop' node (while/until, max_iterations) or 'foreach', not with edges)",
                    "cycle",
                )
            )
        return issues

    def cycles(self) -> list[tuple[list[str], list[str]]]:
        """Each group of nodes on cycles (a strongly connected component, sorted) with one
        shortest cycle through its first node, e.g. ``["a", "b", "a"]``. Nodes that only
        follow a cycle are left out."""
        left = set(self.cyclic)
        out = []
        for start in self.cyclic:
            if start not in left:
                continue
            scc = _reach(start, self.succ, left) & _reach(start, self.pred, left)
            left -= scc
            if len(scc) > 1:
                out.append((sorted(scc), _shortest_cycle(start, self.succ, scc)))
        return out

    def runs_before(self, ref: str, node: str) -> bool:
        """True when ``ref`` is an ancestor of ``node`` (always, on a cycle: reported apart)."""
        if node not in self.position or ref not in self.position:
            return True
        floor = self.position[ref]
        if floor >= self.position[node]:
            return False
        stack, seen = [node], {node}
        while stack:
            for parent in self.pred[stack.pop()]:
                if parent == ref:
                    return True
                if parent not in seen and self.position.get(parent, -1) > floor:
                    seen.add(parent)
                    stack.append(parent)
        return False


def _reach(start: str, graph: dict[str, list[str]], allowed: set[str]) -> set[str]:
    """Nodes of ``allowed`` reachable from ``start`` (itself included) along ``graph``."""
    seen, stack = {start}, [start]
    while stack:
        for nxt in graph[stack.pop()]:
            if nxt in allowed and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _shortest_cycle(start: str, succ: dict[str, list[str]], within: set[str]) -> list[str]:
    """A shortest path ``start -> ... -> start`` inside ``within`` (which holds such a cycle)."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for nxt in succ[current]:
            if nxt == start:
                path = [current]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if nxt in within and nxt not in parent:
                parent[nxt] = current
                queue.append(nxt)
    raise ValueError(f"no cycle through {start}")


def _check_reachable(workflow: Workflow) -> list[ValidationIssue]:
    succ, pred = _graph(workflow)
    starts = [n for n in workflow.entry if n in succ] or [n for n, p in pred.items() if not p]
    seen = set(starts)
    queue = deque(starts)
    while queue:
        for nxt in succ[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return [
        ValidationIssue(f"nodes.{n}", "unreachable from the entry nodes", "unreachable")
        for n in workflow.nodes
        if n not in seen
    ]


def _check_templates(
    workflow: Workflow, upstream: _Upstream, raw_fields: dict[str, frozenset[str]]
) -> list[ValidationIssue]:
    # (location, template, the node it must run before, whether that node itself is allowed)
    places: list[tuple[str, str, str | None, bool]] = []
    for node_id, node in workflow.nodes.items():
        raw = raw_fields.get(node_id, frozenset())
        config = {k: v for k, v in node.config.items() if k not in raw}
        for loc, source in iter_templates(config, f"nodes.{node_id}.config"):
            places.append((loc, source, node_id, False))
    for index, edge in enumerate(workflow.edges):
        if edge.condition is not None:
            places.append((f"edges[{index}].condition", edge.condition, edge.source, True))
    for loc, source in iter_templates(workflow.outputs, "outputs"):
        places.append((loc, source, None, True))
    input_keys = _declared(workflow.inputs)
    state_keys = _declared(workflow.state)
    issues = []
    for loc, source, reader, itself in places:
        refs = template_refs(source)
        if refs.error:
            issues.append(ValidationIssue(loc, refs.error, "template_syntax"))
            continue
        for ref in sorted(refs.nodes):
            if ref not in workflow.nodes:
                issues.append(
                    ValidationIssue(loc, f"refers to unknown node {ref!r}", "template_ref")
                )
            elif (
                reader is not None
                and not (itself and ref == reader)
                and not upstream.runs_before(ref, reader)
            ):
                issues.append(
                    ValidationIssue(
                        loc,
                        f"refers to node {ref!r}, which is not upstream of this node "
                        "(add an edge so it runs first)",
                        "template_ref",
                    )
                )
        for kind, keys, refs_of in (
            ("inputs", input_keys, refs.inputs),
            ("state", state_keys, refs.state),
        ):
            if keys is None:
                continue
            for ref in sorted(refs_of - keys):
                issues.append(
                    ValidationIssue(
                        loc,
                        f"refers to {kind}.{ref}, which the {kind} schema does not declare",
                        "template_ref",
                    )
                )
    return issues


def _declared(schema: dict[str, Any]) -> set[str] | None:
    props = schema.get("properties")
    return set(props) if isinstance(props, dict) else None
