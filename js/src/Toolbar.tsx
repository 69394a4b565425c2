/** The toolbar: add from the palette, run, undo/redo, tidy, search, run status and issues. */
import { useState } from "react";

import { colourOf } from "./look";
import type { Issue, NodeTypeInfo, RunInfo, WorkflowDict } from "./types";

export interface ToolbarProps {
  types: NodeTypeInfo[];
  graph: WorkflowDict;
  issues: Issue[];
  runInfo: RunInfo;
  notice: string;
  canUndo: boolean;
  canRedo: boolean;
  onAdd: (type: string) => void;
  onRun: () => void;
  onUndo: () => void;
  onRedo: () => void;
  onTidy: () => void;
  onFind: (text: string) => void;
  /** The `%%flow` line of the cell the canvas belongs to ("" when none). */
  cellLine: string;
  unsaved: boolean;
  onSave: () => void;
}

export function Toolbar(props: ToolbarProps): JSX.Element {
  const { types, graph, issues, runInfo } = props;
  const [paletteType, setPaletteType] = useState<string>("");
  const [query, setQuery] = useState("");
  const policy = runInfo.policy ? ` (${runInfo.policy})` : "";
  const status = runInfo.status ? `run ${runInfo.run_id ?? ""}: ${runInfo.status}${policy}` : "";
  const listId = `fm-nodes-${graph.id}`;
  return (
    <div className="fm-toolbar">
      <select aria-label="node type" data-testid="fm-palette" value={paletteType}
        onChange={(e) => setPaletteType(e.target.value)}>
        {types.map((t) => (
          <option key={t.name} value={t.name} title={t.description}
            style={{ color: colourOf(t.name) }}>{t.name}</option>
        ))}
      </select>
      <button type="button" className="fm-button" data-testid="fm-add"
        onClick={() => props.onAdd(paletteType || types[0]?.name || "")}>+ Add</button>
      <button type="button" className="fm-button fm-primary" data-testid="fm-run"
        onClick={props.onRun}>▶ Run</button>
      <button type="button" className="fm-button" data-testid="fm-undo" title="Undo (Ctrl/Cmd+Z)"
        disabled={!props.canUndo} onClick={props.onUndo}>Undo</button>
      <button type="button" className="fm-button" data-testid="fm-redo"
        title="Redo (Shift+Ctrl/Cmd+Z)" disabled={!props.canRedo} onClick={props.onRedo}>Redo</button>
      <button type="button" className="fm-button" data-testid="fm-tidy" title="Tidy the layout"
        onClick={props.onTidy}>Tidy</button>
      <input type="search" className="fm-search" data-testid="fm-search" placeholder="find node…"
        aria-label="find node" list={listId} value={query} onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => { if (e.key === "Enter") props.onFind(query); }} />
      <datalist id={listId}>
        {Object.entries(graph.nodes ?? {}).map(([id, n]) => (
          <option key={id} value={id}>{n.label ?? ""}</option>
        ))}
      </datalist>
      {props.cellLine && (
        <button type="button" className="fm-button" data-testid="fm-save"
          title={`Write the graph into its cell (${props.cellLine}); same as %flow save`}
          disabled={!props.unsaved} onClick={props.onSave}>Save to cell</button>
      )}
      {props.cellLine && props.unsaved && (
        <span className="fm-unsaved" data-testid="fm-unsaved"
          title="The canvas differs from its cell: save it before restarting the kernel">
          unsaved edits</span>
      )}
      <span className="fm-run-status" data-testid="fm-run-status"
        data-status={runInfo.status ?? ""}>{status}</span>
      {runInfo.message && <span className="fm-error" data-testid="fm-message">{runInfo.message}</span>}
      {props.notice && <span className="fm-error" data-testid="fm-notice">{props.notice}</span>}
      <span className={issues.length ? "fm-issue-count fm-error" : "fm-issue-count"}
        data-testid="fm-issue-count">
        {issues.length ? `${issues.length} issue(s)` : "valid"}
      </span>
    </div>
  );
}
