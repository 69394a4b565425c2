/** The canvas node: icon, label, type, status and issues; one source handle per route, its
 * name inside the node (edges leave to the right and never cover it). */
import { Handle, type Node, type NodeProps, Position } from "@xyflow/react";
import { memo } from "react";

import type { FmNodeData } from "./flow";
import { Icon } from "./Icon";
import { colourOf } from "./look";

const HEAD = 40; // px above the first named route
const ROUTE_GAP = 16;

/** The top of each source handle: the middle for one unnamed handle, else one row per route
 * below the head. */
export function handleTops(handles: (string | null)[]): string[] {
  if (handles.length === 1 && handles[0] === null) return ["50%"];
  return handles.map((_, i) => `${HEAD + i * ROUTE_GAP}px`);
}

function FmNodeView({ data, selected }: NodeProps<Node<FmNodeData>>): JSX.Element {
  const { id, spec, handles, issues, result, waiting } = data;
  const status = waiting ? "suspended" : (result?.status ?? "idle");
  const classes = ["fm-node", `fm-status-${status}`];
  if (issues.length > 0) classes.push("fm-has-issues");
  if (selected) classes.push("fm-selected");
  const title = issues.map((i) => `${i.location}: ${i.message}`).join("\n");
  const tops = handleTops(handles);
  const routed = tops[0] !== "50%";
  const colour = colourOf(spec.type);
  return (
    <div className={classes.join(" ")} data-node-id={id} data-status={status}
      style={{ borderLeftColor: colour,
        minHeight: routed ? HEAD + handles.length * ROUTE_GAP - 4 : undefined }}
      title={title || undefined}>
      <Handle type="target" position={Position.Left} />
      <div className="fm-node-head">
        <Icon type={spec.type} colour={colour} />
        <span className="fm-label">{spec.label || id}</span>
        {issues.length > 0 && <span className="fm-issue-badge">{issues.length}</span>}
      </div>
      <div className="fm-node-sub">
        <span className="fm-type">{spec.type}</span>
        {status !== "idle" && <span className="fm-status-text">{status}</span>}
        {result?.duration_ms != null && (
          <span className="fm-duration">{Math.round(result.duration_ms)} ms</span>
        )}
      </div>
      {handles.map((h, i) => (
        <Handle key={h ?? "__default"} id={h ?? undefined} type="source" position={Position.Right}
          style={{ top: tops[i] }} className={h ? "fm-route" : undefined}>
          {h && <span className="fm-route-label">{h}</span>}
        </Handle>
      ))}
    </div>
  );
}

export const FmNode = memo(FmNodeView);
