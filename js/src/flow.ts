/** Workflow dict + run state -> React Flow nodes and edges (pure). */
import { type Edge, MarkerType, type Node } from "@xyflow/react";

import { layout, sourceHandles } from "./graph";
import { statusColour } from "./look";
import { cycleEdges, edgeState } from "./paths";
import type { Issue, NodeResult, NodeSpec, PendingItem, WorkflowDict, XY } from "./types";

export interface FmNodeData extends Record<string, unknown> {
  id: string;
  spec: NodeSpec;
  handles: (string | null)[];
  issues: Issue[];
  result: NodeResult | null;
  waiting: boolean;
}

export interface FmEdgeData extends Record<string, unknown> {
  index: number;
}

export interface FlowInput {
  graph: WorkflowDict;
  routes: Record<string, string[] | null>;
  issues: Issue[];
  results: Record<string, NodeResult>;
  pending: PendingItem[];
}

export interface FlowOutput {
  nodes: Node<FmNodeData>[];
  edges: Edge<FmEdgeData>[];
  positions: Record<string, XY>;
}

export function toFlow(input: FlowInput): FlowOutput {
  const { graph, routes, issues, results, pending } = input;
  const positions = layout(graph);
  const handles = sourceHandles(graph, routes);
  const byNode = new Map<string, Issue[]>();
  const badEdges = new Set<number>();
  for (const issue of issues) {
    if (issue.node !== null) byNode.set(issue.node, [...(byNode.get(issue.node) ?? []), issue]);
    if (issue.edge !== null) badEdges.add(issue.edge);
  }
  const waiting = new Set(pending.map((p) => p.node));
  const nodes: Node<FmNodeData>[] = Object.entries(graph.nodes ?? {}).map(([id, spec]) => ({
    id,
    type: "fm",
    position: positions[id] ?? { x: 0, y: 0 },
    data: {
      id,
      spec,
      handles: handles[id] ?? [null],
      issues: byNode.get(id) ?? [],
      result: results[id] ?? null,
      waiting: waiting.has(id),
    },
  }));
  const cyclic = cycleEdges(graph);
  const edges: Edge<FmEdgeData>[] = (graph.edges ?? []).map((e, index) => {
    const label = e.condition ? `if ${e.condition}` : "";  // routes are named on the handles
    const status = results[e.target]?.status;
    const state = edgeState(e, results);
    const classes = [
      badEdges.has(index) ? "fm-edge-issue" : "",
      cyclic.has(index) ? "fm-edge-cycle" : "",
      status === "skipped" ? "fm-edge-dead" : "",
      state ? `fm-edge-${state}` : "",
    ];
    const alarm = cyclic.has(index) || badEdges.has(index);
    const colour = alarm ? statusColour("failed") : state === "taken" ? statusColour("succeeded") : undefined;
    const edge: Edge<FmEdgeData> = {
      id: `e${index}`,
      source: e.source,
      target: e.target,
      sourceHandle: e.source_handle ?? null,
      data: { index },
      className: classes.filter(Boolean).join(" "),
      markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16, ...(colour ? { color: colour } : {}) },
      animated: status === "running",
    };
    if (label) edge.label = label;
    return edge;
  });
  return { nodes, edges, positions };
}
