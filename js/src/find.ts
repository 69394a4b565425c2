/** Finding a node by what the user typed (pure). */
import type { WorkflowDict } from "./types";

/** The node `text` names: an exact id, else an exact label, else the first id or label that
 * starts with it, else contains it (all ignoring case); null when none does. */
export function findNode(wf: WorkflowDict, text: string): string | null {
  const q = text.trim().toLowerCase();
  if (!q) return null;
  const entries = Object.entries(wf.nodes ?? {}).map(([id, n]) => ({
    id, keys: [id.toLowerCase(), (n.label ?? "").toLowerCase()].filter(Boolean),
  }));
  const tests: ((k: string) => boolean)[] = [
    (k) => k === q, (k) => k.startsWith(q), (k) => k.includes(q),
  ];
  if (wf.nodes?.[text.trim()]) return text.trim();
  for (const test of tests) {
    const hit = entries.find((e) => e.keys.some(test));
    if (hit) return hit.id;
  }
  return null;
}
