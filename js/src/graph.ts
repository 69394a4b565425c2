/** The graph state reducer: pure edits of a workflow dict, and auto-layout. */
import dagre from "@dagrejs/dagre";

import type { EdgeSpec, NodeSpec, WorkflowDict, XY } from "./types";

export const NODE_WIDTH = 180;
export const NODE_HEIGHT = 60;

export type Edit =
  | { kind: "move"; positions: Record<string, XY> }
  | { kind: "connect"; source: string; target: string; source_handle?: string | null }
  | { kind: "delete"; nodes?: string[]; edges?: number[] }
  | { kind: "add"; type: string; position: XY; id?: string }
  | { kind: "config"; node: string; config: Record<string, unknown>; label?: string | null }
  | { kind: "condition"; edge: number; condition: string | null };

const ID_CHARS = /[^A-Za-z0-9_]/g;

/** A fresh node id `<type>_<n>` that is a valid identifier and unused in `wf`. */
export function freshId(wf: WorkflowDict, type: string): string {
  let base = type.replace(ID_CHARS, "_");
  if (!/^[A-Za-z_]/.test(base)) base = `n_${base}`;
  const nodes = wf.nodes ?? {};
  let n = 1;
  while (`${base}_${n}` in nodes) n += 1;
  return `${base}_${n}`;
}

function round(p: XY): XY {
  return { x: Math.round(p.x), y: Math.round(p.y) };
}

/** Apply one canvas edit; returns a new dict (the input is not mutated). Throws on bad edits. */
export function applyEdit(wf: WorkflowDict, edit: Edit): WorkflowDict {
  const nodes: Record<string, NodeSpec> = { ...(wf.nodes ?? {}) };
  let edges: EdgeSpec[] = [...(wf.edges ?? [])];
  const next: WorkflowDict = { ...wf };
  switch (edit.kind) {
    case "move":
      for (const [id, pos] of Object.entries(edit.positions)) {
        if (id in nodes) nodes[id] = { ...nodes[id], position: round(pos) };
      }
      break;
    case "connect": {
      if (!(edit.source in nodes) || !(edit.target in nodes)) {
        throw new Error(`cannot connect ${edit.source} -> ${edit.target}: unknown node`);
      }
      if (edit.source === edit.target) throw new Error(`cannot connect ${edit.source} to itself`);
      const handle = edit.source_handle ?? null;
      const exists = edges.some(
        (e) =>
          e.source === edit.source && e.target === edit.target && (e.source_handle ?? null) === handle,
      );
      if (exists) return wf;
      const edge: EdgeSpec = { source: edit.source, target: edit.target };
      if (handle !== null) edge.source_handle = handle;
      edges.push(edge);
      break;
    }
    case "delete": {
      const gone = new Set(edit.nodes ?? []);
      const dropEdges = new Set(edit.edges ?? []);
      for (const id of gone) delete nodes[id];
      edges = edges.filter(
        (e, i) => !dropEdges.has(i) && !gone.has(e.source) && !gone.has(e.target),
      );
      if (Array.isArray(wf.entry)) next.entry = wf.entry.filter((id) => !gone.has(id));
      break;
    }
    case "add": {
      const id = edit.id ?? freshId(wf, edit.type);
      if (id in nodes) throw new Error(`a node ${id} already exists`);
      nodes[id] = { type: edit.type, position: round(edit.position) };
      break;
    }
    case "config": {
      const node = nodes[edit.node];
      if (node === undefined) throw new Error(`no node ${edit.node}`);
      const updated: NodeSpec = { ...node, config: edit.config };
      if (edit.label !== undefined) {
        if (edit.label) updated.label = edit.label;
        else delete updated.label;
      }
      nodes[edit.node] = updated;
      break;
    }
    case "condition": {
      const edge = edges[edit.edge];
      if (edge === undefined) throw new Error(`no edge #${edit.edge}`);
      const updated: EdgeSpec = { ...edge };
      if (edit.condition) updated.condition = edit.condition;
      else delete updated.condition;
      edges[edit.edge] = updated;
      break;
    }
  }
  next.nodes = nodes;
  next.edges = edges;
  return next;
}

/** Every node laid out left to right by dagre, ignoring stored positions. */
export function tidy(wf: WorkflowDict): Record<string, XY> {
  const nodes = wf.nodes ?? {};
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 60 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const id of Object.keys(nodes)) g.setNode(id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const e of wf.edges ?? []) {
    if (e.source in nodes && e.target in nodes) g.setEdge(e.source, e.target);
  }
  dagre.layout(g);
  const out: Record<string, XY> = {};
  for (const id of Object.keys(nodes)) {
    const n = g.node(id);
    out[id] = { x: Math.round(n.x - NODE_WIDTH / 2), y: Math.round(n.y - NODE_HEIGHT / 2) };
  }
  return out;
}

/** Positions for every node: stored ones kept, the others laid out left to right by dagre. */
export function layout(wf: WorkflowDict): Record<string, XY> {
  const nodes = wf.nodes ?? {};
  const ids = Object.keys(nodes);
  const missing = ids.some((id) => !nodes[id].position);
  const out: Record<string, XY> = missing ? tidy(wf) : {};
  for (const id of ids) {
    const p = nodes[id].position;
    if (p) out[id] = { x: p.x, y: p.y };
  }
  return out;
}

/** The canvas height (px) that shows the laid-out graph at zoom 1 with `chrome` px of
 * toolbar, clamped to `min`..`max`. */
export function fitHeight(positions: Record<string, XY>, chrome: number, min = 240, max = 720): number {
  const ys = Object.values(positions).map((p) => p.y);
  const span = ys.length > 0 ? Math.max(...ys) - Math.min(...ys) + NODE_HEIGHT : 0;
  return Math.round(Math.min(max, Math.max(min, span + 80 + chrome)));
}

/** A spot for a new node near `p` (its centre) that overlaps no node in `taken`. */
export function freeSpot(taken: Record<string, XY>, p: XY): XY {
  const spot = { x: p.x - NODE_WIDTH / 2, y: p.y - NODE_HEIGHT / 2 };
  const clash = (q: XY): boolean =>
    Math.abs(q.x - spot.x) < NODE_WIDTH + 10 && Math.abs(q.y - spot.y) < NODE_HEIGHT + 10;
  for (let tries = 0; tries < 1000 && Object.values(taken).some(clash); tries++) {
    spot.y += NODE_HEIGHT + 20;
  }
  return round(spot);
}

/** The same workflow with every missing position filled from `positions` (freezes a layout). */
export function freeze(wf: WorkflowDict, positions: Record<string, XY>): WorkflowDict {
  const nodes = wf.nodes ?? {};
  const missing = Object.keys(nodes).filter((id) => !nodes[id].position && positions[id]);
  if (missing.length === 0) return wf;
  const filled = { ...nodes };
  for (const id of missing) filled[id] = { ...nodes[id], position: round(positions[id]) };
  return { ...wf, nodes: filled };
}

/** Source handle ids each node needs: named routes, those edges use, and `null` (default). */
export function sourceHandles(
  wf: WorkflowDict,
  routes: Record<string, string[] | null>,
): Record<string, (string | null)[]> {
  const out: Record<string, (string | null)[]> = {};
  for (const id of Object.keys(wf.nodes ?? {})) {
    const named = routes[id];
    out[id] = named && named.length > 0 ? [...named] : [null];
  }
  for (const e of wf.edges ?? []) {
    const list = out[e.source];
    if (list === undefined) continue;
    const handle = e.source_handle ?? null;
    if (!list.includes(handle)) list.push(handle);
  }
  return out;
}
