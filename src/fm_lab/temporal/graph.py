"""A plan as the Temporal workflow walks it: plain JSON (node types, edges, order), computed
outside the workflow from a validated :class:`~fm_lab.engine.plan.Plan`, so the workflow code
needs neither the registry nor templates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from fm_lab.engine.plan import Plan


class GraphEdge(TypedDict):
    target: str
    handle: str | None
    condition: bool  # a template decides (the activity evaluates it)


class GraphNode(TypedDict):
    type: str
    retry: dict[str, Any] | None
    timeout_s: float | None


class Graph(TypedDict):
    """What the workflow needs of a (sub-)workflow: the ``spec`` (the workflow's canonical
    dict, sent to the activities), its nodes, incoming edge counts, outgoing edges (in the
    plan's order), entry nodes, the concurrency limit and the initial state."""

    spec: dict[str, Any]
    hash: str
    nodes: dict[str, GraphNode]
    incoming: dict[str, int]
    outgoing: dict[str, list[GraphEdge]]
    entry: list[str]
    max_concurrency: int | None
    initial_state: dict[str, Any]


def graph_of(plan: Plan) -> Graph:
    """The :class:`Graph` of a validated plan."""
    workflow = plan.workflow
    spec = workflow.to_dict()
    return {
        "spec": spec,
        "hash": workflow.content_hash(spec),
        "nodes": {
            node_id: {"type": node.type,
                      "retry": node.retry.model_dump(mode="json") if node.retry else None,
                      "timeout_s": node.timeout_s}
            for node_id, node in plan.nodes.items()
        },
        "incoming": {node_id: len(edges) for node_id, edges in plan.incoming.items()},
        "outgoing": {
            node_id: [{"target": e.target, "handle": e.source_handle,
                       "condition": e.condition is not None} for e in edges]
            for node_id, edges in plan.outgoing.items()
        },
        "entry": list(plan.entry),
        "max_concurrency": workflow.max_concurrency,
        "initial_state": plan.initial_state(),
    }


__all__ = ["Graph", "GraphEdge", "GraphNode", "graph_of"]
