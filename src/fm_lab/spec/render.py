"""HTML summaries of a workflow for notebooks."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fm_lab.spec.models import Workflow


def workflow_html(workflow: Workflow) -> str:
    """A compact table of a workflow's nodes and edges."""
    rows = "".join(
        f"<tr><td><code>{html.escape(n.id)}</code></td><td>{html.escape(n.type)}</td>"
        f"<td>{html.escape(n.label or '')}</td></tr>"
        for n in workflow.nodes.values()
    )
    edges = ", ".join(
        html.escape(f"{e.source}{'.' + e.source_handle if e.source_handle else ''} → {e.target}")
        for e in workflow.edges
    )
    title = html.escape(workflow.name or workflow.id)
    return (
        f"<div><b>Workflow {title}</b> <small>v{workflow.version}, {len(workflow.nodes)} nodes"
        f"</small><table><tr><th>node</th><th>type</th><th>label</th></tr>{rows}</table>"
        f"<small>{edges}</small></div>"
    )
