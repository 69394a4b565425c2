"""Plain-data views of workflows, node types, runs and suspensions for the widget (JSON only)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from fm_lab.engine.run import Run
    from fm_lab.nodes.registry import NodeRegistry
    from fm_lab.spec.errors import ValidationIssue
    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore

PREVIEW_CHARS = 4000
_NODE_LOC = re.compile(r"^nodes[.\[]([A-Za-z_][A-Za-z0-9_]*)")
_EDGE_LOC = re.compile(r"^edges\[(\d+)\]")


def issue_rows(issues: list[ValidationIssue]) -> list[dict[str, Any]]:
    """Validation issues with the node id or edge index their location points at."""
    rows = []
    for issue in issues:
        node = _NODE_LOC.match(issue.location)
        edge = _EDGE_LOC.match(issue.location)
        rows.append(
            {
                "location": issue.location,
                "message": issue.message,
                "code": issue.code,
                "node": node.group(1) if node else None,
                "edge": int(edge.group(1)) if edge else None,
            }
        )
    return rows


def resume_schema_of(node_type: type[Any]) -> dict[str, Any] | None:
    """A node type's resume schema as JSON schema (None if it never suspends for data)."""
    schema = getattr(node_type, "resume_schema", None)
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    return schema if isinstance(schema, dict) else None


def node_type_rows(registry: NodeRegistry) -> list[dict[str, Any]]:
    """The palette: every registered type with its config schema and resume schema."""
    rows = []
    for name in registry.names():
        node_type = registry.lookup(name)
        if node_type is None:
            continue
        schema = node_type.json_schema()
        rows.append(
            {
                "name": name,
                "description": str(schema.get("description") or ""),
                "schema": schema,
                "resume_schema": resume_schema_of(node_type),
            }
        )
    return rows


def route_handles(workflow: Workflow, registry: NodeRegistry) -> dict[str, list[str] | None]:
    """Named output routes of each node (None: every outgoing edge is followed)."""
    handles: dict[str, list[str] | None] = {}
    for node_id, node in workflow.nodes.items():
        node_type = registry.lookup(node.type)
        handles[node_id] = None if node_type is None else node_type.output_handles(node.config)
    return handles


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str | None:
    """A node output as (truncated) JSON text for the side panel."""
    if value is None:
        return None
    if hasattr(value, "to_dict") and hasattr(value, "shape"):  # a DataFrame
        text = f"DataFrame {value.shape[0]}x{value.shape[1]}\n{value.head(20).to_string()}"
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more chars)"


def jsonable(value: Any) -> Any:
    """``value`` made JSON-safe (unknown objects become their ``str``)."""
    return json.loads(json.dumps(value, default=str))


def result_rows(run: Run, registry: NodeRegistry | None = None) -> dict[str, dict[str, Any]]:
    """Status, timings, attempts, error, output preview and taken routes (``taken``: the
    route handles a finished node took, None when it follows every edge) of each top-level
    node of a run."""
    rows = {}
    for node_id, node in run.workflow.nodes.items():
        result = run.node(node_id)
        if result.status == "pending":
            continue
        node_type = registry.lookup(node.type) if registry is not None else None
        taken = node_type.taken_handles(result.output) if node_type is not None else None
        rows[node_id] = {  # a node whose output came from the cache shows as cached
            "status": "cached" if result.cached_from is not None else result.status,
            "duration_ms": result.duration_ms,
            "attempts": result.attempts,
            "error": jsonable(result.error),
            "output": preview(result.output),
            "taken": sorted(taken) if taken is not None and result.status == "succeeded" else None,
        }
    return rows


def pending_rows(
    store: RunStore, run_id: str, results: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Suspensions of a run (and its child runs) waiting for data, with their resume schema,
    each placed on a top-level node: its own node, or (in a child run or a foreach item) the
    suspended composite node holding it. ``assignees``/``roles``: who may answer (empty: anyone);
    ``mine``: whether the current user may (the widget shows the form only then)."""
    from fm_lab.identity import current_roles, current_user, may_answer
    from fm_lab.store.codec import loads

    user, user_roles = current_user(), current_roles()

    records = store.pending(run_id, with_children=True).to_dict("records")
    heads = [re.split(r"[\[/.#]", str(rec["path_id"]))[0] for rec in records]
    leaves = {h for rec, h in zip(records, heads, strict=True) if rec["run_id"] == run_id}
    # a suspended top-level node that is no leaf itself holds nested suspensions
    holders = [n for n, row in results.items() if row["status"] == "suspended" and n not in leaves]
    rows = []
    for rec, head in zip(records, heads, strict=True):
        own = rec["run_id"] == run_id and head in results
        node = head if own else (holders[0] if holders else None)
        assignees: list[str] = _names(rec.get("assignees"))
        roles: list[str] = _names(rec.get("roles"))
        rows.append(
            {
                "run_id": rec["run_id"],
                "node": node,
                "label": rec["label"],
                "path_id": str(rec["path_id"]),
                "payload": jsonable(loads(rec["payload"])),
                "schema": loads(rec["resume_schema"]) if rec["resume_schema"] else None,
                "payload_schema": (loads(rec["payload_schema"])
                                   if isinstance(rec.get("payload_schema"), str) else None),
                "assignees": assignees,
                "roles": roles,
                "mine": may_answer(assignees, roles, user, user_roles),
            }
        )
    return rows


def _names(text: Any) -> list[str]:
    """A stored list of assignees or roles (NULL, which comes as None or NaN: nobody)."""
    from fm_lab.store.codec import loads

    return [str(n) for n in loads(text)] if isinstance(text, str) else []
