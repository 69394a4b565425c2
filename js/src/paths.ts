/** What the edges of a workflow mean: which lie on cycles, and which a run took (pure). */
import type { EdgeSpec, NodeResult, WorkflowDict } from "./types";

/** Strongly connected components (Tarjan, iterative), as a node -> component number map. */
function components(ids: string[], succ: Map<string, string[]>): Map<string, number> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const comp = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  let counter = 0;
  let comps = 0;
  for (const root of ids) {
    if (index.has(root)) continue;
    const work: [string, number][] = [[root, 0]];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const [v, i] = top;
      const next = succ.get(v) ?? [];
      if (i < next.length) {
        top[1] += 1;
        const w = next[i];
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) {
          low.set(v, Math.min(low.get(v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.set(w, comps);
        } while (w !== v);
        comps += 1;
      }
    }
  }
  return comp;
}

/** Indexes of the edges that lie on a cycle (a self-loop included). */
export function cycleEdges(wf: WorkflowDict): Set<number> {
  const nodes = wf.nodes ?? {};
  const edges = wf.edges ?? [];
  const succ = new Map<string, string[]>();
  for (const e of edges) {
    if (e.source in nodes && e.target in nodes) {
      succ.set(e.source, [...(succ.get(e.source) ?? []), e.target]);
    }
  }
  const comp = components(Object.keys(nodes), succ);
  const out = new Set<number>();
  edges.forEach((e, i) => {
    const c = comp.get(e.source);
    if (c !== undefined && (e.source === e.target || c === comp.get(e.target))) out.add(i);
  });
  return out;
}

const FINISHED = new Set(["succeeded", "cached", "failed", "skipped", "cancelled"]);
const DONE = new Set(["succeeded", "cached"]);

/** Whether a run took an edge: "taken" (its source finished, its route was taken and its
 * target ran), "not-taken" (its source finished and the edge was not followed), or null
 * (not known yet: no run, or its source has not finished). A condition is not evaluated
 * here: a target reached through another edge marks a false-conditioned edge as taken. */
export function edgeState(
  edge: EdgeSpec,
  results: Record<string, NodeResult>,
): "taken" | "not-taken" | null {
  const source = results[edge.source];
  if (source === undefined || !FINISHED.has(source.status)) return null;
  if (!DONE.has(source.status)) return "not-taken";
  const taken = source.taken ?? null;
  if (edge.source_handle && taken !== null && !taken.includes(edge.source_handle)) {
    return "not-taken";
  }
  const target = results[edge.target];
  if (target === undefined || target.status === "pending") return null;
  return target.status === "skipped" ? "not-taken" : "taken";
}
