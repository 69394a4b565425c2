"""HTML summaries of a workflow for notebooks."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fm_lab.spec.models import Workflow


def _edge_text(workflow: Workflow) -> list[str]:
    return [f"{e.source}{'.' + e.source_handle if e.source_handle else ''} -> {e.target}"
            + (f" if {e.condition}" if e.condition else "") for e in workflow.edges]


def workflow_text(workflow: Workflow) -> str:
    """The plain-text summary terminals show (IPython's pretty printer)."""
    width = max((len(n) for n in workflow.nodes), default=4)
    lines = [f"Workflow {workflow.name or workflow.id} (v{workflow.version}, "
             f"{len(workflow.nodes)} nodes, {len(workflow.edges)} edges)"]
    lines += [f"  {n.id:<{width}}  {n.type}{'  ' + n.label if n.label else ''}"
              for n in workflow.nodes.values()]
    edges = _edge_text(workflow)
    if edges:
        lines.append("  edges: " + ", ".join(edges))
    return "\n".join(lines)


def workflow_html(workflow: Workflow) -> str:
    """A compact table of a workflow's nodes and edges."""
    rows = "".join(
        f"<tr><td><code>{html.escape(n.id)}</code></td><td>{html.escape(n.type)}</td>"
        f"<td>{html.escape(n.label or '')}</td></tr>"
        for n in workflow.nodes.values()
    )
    edges = html.escape(", ".join(_edge_text(workflow))).replace("-&gt;", "→")
    title = html.escape(workflow.name or workflow.id)
    return (
        f"<div><b>Workflow {title}</b> <small>v{workflow.version}, {len(workflow.nodes)} nodes"
        f"</small><table><tr><th>node</th><th>type</th><th>label</th></tr>{rows}</table>"
        f"<small>{edges}</small></div>"
    )
