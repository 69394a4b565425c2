/** Undo/redo over the graphs the canvas sent (pure; the editor commits what it returns). */
import type { WorkflowDict } from "./types";

export interface History {
  past: WorkflowDict[];
  future: WorkflowDict[];
}

export const LIMIT = 100;

export function emptyHistory(): History {
  return { past: [], future: [] };
}

/** After an edit replaced `before`: it can be undone, and nothing is left to redo. */
export function recorded(h: History, before: WorkflowDict): History {
  return { past: [...h.past, before].slice(-LIMIT), future: [] };
}

/** Undo from `current`: the graph to commit and the new history (null: nothing to undo). */
export function undo(h: History, current: WorkflowDict): { graph: WorkflowDict; history: History } | null {
  const graph = h.past[h.past.length - 1];
  if (graph === undefined) return null;
  return { graph, history: { past: h.past.slice(0, -1), future: [current, ...h.future] } };
}

/** Redo from `current`: the graph to commit and the new history (null: nothing to redo). */
export function redo(h: History, current: WorkflowDict): { graph: WorkflowDict; history: History } | null {
  const graph = h.future[0];
  if (graph === undefined) return null;
  return { graph, history: { past: [...h.past, current], future: h.future.slice(1) } };
}
