"""A static picture of a workflow and its last run's statuses: an SVG (in HTML) and a text
summary, carried in every canvas output so that a reopened notebook, nbviewer and GitHub show
the graph without a kernel."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fm_lab.palette import icon_path, status_colour, type_colour

if TYPE_CHECKING:
    from fm_lab.spec.models import Edge, Workflow

NODE_W, NODE_H = 180, 52
RANK_GAP, ROW_GAP, MARGIN = 60, 24, 12
_FINISHED = {"succeeded", "cached"}
_NOT_REACHED = {"skipped", "cancelled"}


@dataclass(frozen=True)
class Box:
    """Where one node is drawn (top-left corner, flow units)."""

    x: float
    y: float


def layout(workflow: Workflow) -> dict[str, Box]:
    """The canvas's positions when every node has one, else a left-to-right layered layout
    (longest path from the sources, rows ordered by their predecessors)."""
    nodes = workflow.nodes
    if nodes and all(n.position is not None for n in nodes.values()):
        return {k: Box(n.position.x, n.position.y) for k, n in nodes.items()  # type: ignore[union-attr]
                }
    ranks = _ranks(workflow)
    rows: dict[int, list[str]] = {}
    for node_id in nodes:
        rows.setdefault(ranks[node_id], []).append(node_id)
    preds: dict[str, list[str]] = {k: [] for k in nodes}
    for edge in workflow.edges:
        if edge.source in nodes and edge.target in nodes:
            preds[edge.target].append(edge.source)
    slot: dict[str, float] = {}
    for rank in sorted(rows):
        members = rows[rank]
        if rank > 0:  # barycentre of the predecessors already placed
            members.sort(key=lambda n: _mean([slot[p] for p in preds[n] if p in slot], 1e9))
        for index, node_id in enumerate(members):
            slot[node_id] = index
    tallest = max((len(r) for r in rows.values()), default=1)
    boxes = {}
    for rank, members in rows.items():
        offset = (tallest - len(members)) * (NODE_H + ROW_GAP) / 2
        for index, node_id in enumerate(members):
            boxes[node_id] = Box(rank * (NODE_W + RANK_GAP), offset + index * (NODE_H + ROW_GAP))
    return boxes


def _mean(values: list[float], empty: float) -> float:
    return sum(values) / len(values) if values else empty


def _ranks(workflow: Workflow) -> dict[str, int]:
    """Longest-path rank of each node over the graph without its back edges."""
    nodes = list(workflow.nodes)
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    for edge in workflow.edges:
        if edge.source in succ and edge.target in succ:
            succ[edge.source].append(edge.target)
    order: list[str] = []  # reverse post-order of a DFS, back edges ignored
    state: dict[str, int] = {}
    for root in nodes:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node_id, index = stack.pop()
            if index < len(succ[node_id]):
                stack.append((node_id, index + 1))
                nxt = succ[node_id][index]
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node_id] = 2
                order.append(node_id)
    position = {n: i for i, n in enumerate(reversed(order))}
    rank = dict.fromkeys(nodes, 0)
    for node_id in reversed(order):
        for nxt in succ[node_id]:
            if position[nxt] > position[node_id]:  # a forward edge (back edges close cycles)
                rank[nxt] = max(rank[nxt], rank[node_id] + 1)
    return rank


def edge_state(source: str | None, target: str | None) -> str:
    """``taken``, ``not-taken`` or ``idle`` for an edge between nodes of these statuses."""
    if target in _NOT_REACHED and source is not None:
        return "not-taken"
    if source in _FINISHED and target is not None and target not in _NOT_REACHED:
        return "taken"
    return "idle"


def _status_of(results: Mapping[str, Mapping[str, Any]], pending: set[str], node_id: str
               ) -> str:
    if node_id in pending:
        return "suspended"
    return str(results.get(node_id, {}).get("status") or "idle")


def graph_svg(workflow: Workflow, results: Mapping[str, Mapping[str, Any]] | None = None,
              pending_nodes: set[str] | None = None) -> str:
    """An SVG of the workflow: nodes in their type's colour, filled by status; edges with
    arrowheads, taken ones solid and not-taken ones dashed."""
    results = results or {}
    pending = pending_nodes or set()
    boxes = layout(workflow)
    if not boxes:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"></svg>'
    left = min(b.x for b in boxes.values()) - MARGIN
    top = min(b.y for b in boxes.values()) - MARGIN
    width = max(b.x for b in boxes.values()) + NODE_W + MARGIN - left
    height = max(b.y for b in boxes.values()) + NODE_H + MARGIN - top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="fm-lab-static-graph" '
        f'viewBox="{left:.0f} {top:.0f} {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" style="max-width:100%;height:auto;font-family:sans-serif">',
        '<defs><marker id="fm-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
        'fill="#64748b"/></marker></defs>',
    ]
    statuses = {k: _status_of(results, pending, k) for k in workflow.nodes}
    exits: dict[str, list[str | None]] = {}  # one exit point per route of each source
    for e in workflow.edges:
        handles = exits.setdefault(e.source, [])
        if e.source_handle not in handles:
            handles.append(e.source_handle)
    parts += [_edge_svg(edge, boxes, statuses, exits[edge.source]) for edge in workflow.edges]
    parts += [_node_svg(workflow, node_id, box, statuses[node_id])
              for node_id, box in boxes.items()]
    parts.append("</svg>")
    return "".join(parts)


def _edge_svg(edge: Edge, boxes: dict[str, Box], statuses: dict[str, str],
              routes: list[str | None]) -> str:
    if edge.source not in boxes or edge.target not in boxes:
        return ""
    a, b = boxes[edge.source], boxes[edge.target]
    x1, y1 = a.x + NODE_W, a.y + NODE_H * (routes.index(edge.source_handle) + 1) / (
        len(routes) + 1)
    x2, y2 = b.x, b.y + NODE_H / 2
    bend = max(40.0, abs(x2 - x1) / 2)
    state = edge_state(statuses.get(edge.source), statuses.get(edge.target))
    style = {"taken": 'stroke="#334155" stroke-width="2"',
             "not-taken": 'stroke="#94a3b8" stroke-width="1.5" stroke-dasharray="5 4" '
                          'opacity="0.6"',
             "idle": 'stroke="#64748b" stroke-width="1.5"'}[state]
    label = edge.source_handle or (f"if {edge.condition}" if edge.condition else "")
    text = ""
    if label:
        text = (f'<text x="{x1 + 6:.0f}" y="{y1 - 5:.0f}" font-size="10" fill="#475569">'
                f"{html.escape(label[:40])}</text>")
    return (f'<path class="fm-edge fm-edge-{state}" d="M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},'
            f'{y1:.0f} {x2 - bend:.0f},{y2:.0f} {x2 - 2:.0f},{y2:.0f}" fill="none" {style} '
            f'marker-end="url(#fm-arrow)"/>{text}')


def _node_svg(workflow: Workflow, node_id: str, box: Box, status: str) -> str:
    node = workflow.nodes[node_id]
    colour = type_colour(node.type)
    fill = status_colour(status)
    label = html.escape((node.label or node_id)[:26])
    sub = html.escape(node.type + ("" if status == "idle" else f" · {status}"))
    icon = icon_path(node.type)
    glyph = ""
    if icon:
        glyph = (f'<svg x="{box.x + 10:.0f}" y="{box.y + 8:.0f}" width="14" height="14" '
                 f'viewBox="0 0 16 16"><path d="{html.escape(icon)}" fill="none" stroke="{colour}" '
                 'stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round"/></svg>')
    text_x = box.x + (30 if icon else 12)
    return (
        f'<g class="fm-node" data-node-id="{html.escape(node_id)}" data-status="{status}">'
        f'<title>{html.escape(node_id)} ({html.escape(node.type)}): {status}</title>'
        f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="5" '
        f'fill="#ffffff" stroke="#cbd5e1"/>'
        f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="5" '
        f'fill="{fill}" fill-opacity="{0 if status == "idle" else 0.25}"/>'
        f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="4" height="{NODE_H}" fill="{colour}"/>'
        f"{glyph}"
        f'<text x="{text_x:.0f}" y="{box.y + 20:.0f}" font-size="13" font-weight="600" '
        f'fill="#1f2937">{label}</text>'
        f'<text x="{box.x + 12:.0f}" y="{box.y + 40:.0f}" font-size="11" '
        f'fill="#4b5563">{sub}</text></g>'
    )


def graph_html(workflow: Workflow, results: Mapping[str, Mapping[str, Any]] | None = None,
               pending_nodes: set[str] | None = None, run: Mapping[str, Any] | None = None
               ) -> str:
    """The static picture as HTML: a caption (workflow, last run) above :func:`graph_svg`."""
    caption = f"Workflow <b>{html.escape(workflow.name or workflow.id)}</b> · " \
              f"{len(workflow.nodes)} nodes"
    if run and run.get("run_id"):
        status = str(run.get("status") or "")
        caption += (f' · last run <code>{html.escape(str(run["run_id"]))}</code>: '
                    f'<span style="color:{status_colour(status)};font-weight:600">'
                    f"{html.escape(status)}</span>")
    return (f'<div class="fm-lab-static"><div style="font-size:12px;margin:2px 0 4px">'
            f"{caption} <small style=\"color:#6b7280\">(a picture: run the cell for the "
            f"live editor)</small></div>{graph_svg(workflow, results, pending_nodes)}</div>")


def graph_text(workflow: Workflow, results: Mapping[str, Mapping[str, Any]] | None = None,
               pending_nodes: set[str] | None = None, run: Mapping[str, Any] | None = None
               ) -> str:
    """A readable plain-text summary: the workflow, the last run, one line per node."""
    results = results or {}
    pending = pending_nodes or set()
    head = f"Workflow {workflow.name or workflow.id}: {len(workflow.nodes)} nodes, " \
           f"{len(workflow.edges)} edges"
    if run and run.get("run_id"):
        head += f"; last run {run['run_id']}: {run.get('status')}"
    width = max((len(n) for n in workflow.nodes), default=4)
    lines = [head]
    for node_id, node in workflow.nodes.items():
        status = _status_of(results, pending, node_id)
        nxt = ", ".join(e.target + (f" [{e.source_handle}]" if e.source_handle else "")
                        for e in workflow.edges if e.source == node_id)
        lines.append(f"  {node_id:<{width}}  {node.type:<12} {status:<9}"
                     + (f" -> {nxt}" if nxt else ""))
    return "\n".join(lines)
