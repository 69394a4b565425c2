/** The canvas node: icon, label, type, status and issues; one source handle per route. */
import { Handle, type Node, type NodeProps, Position } from "@xyflow/react";
import { memo } from "react";

import type { FmNodeData } from "./flow";
import { colourOf, iconOf } from "./look";

function FmNodeView({ data, selected }: NodeProps<Node<FmNodeData>>): JSX.Element {
  const { id, spec, handles, issues, result, waiting } = data;
  const status = waiting ? "suspended" : (result?.status ?? "idle");
  const classes = ["fm-node", `fm-status-${status}`];
  if (issues.length > 0) classes.push("fm-has-issues");
  if (selected) classes.push("fm-selected");
  const title = issues.map((i) => `${i.location}: ${i.message}`).join("\n");
  return (
    <div className={classes.join(" ")} data-node-id={id} data-status={status}
      style={{ borderLeftColor: colourOf(spec.type) }} title={title || undefined}>
      <Handle type="target" position={Position.Left} />
      <div className="fm-node-head">
        <span className="fm-icon" style={{ color: colourOf(spec.type) }}>{iconOf(spec.type)}</span>
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
          style={{ top: `${((i + 1) * 100) / (handles.length + 1)}%` }}
          className={h ? "fm-route" : undefined}>
          {h && <span className="fm-route-label">{h}</span>}
        </Handle>
      ))}
    </div>
  );
}

export const FmNode = memo(FmNodeView);
