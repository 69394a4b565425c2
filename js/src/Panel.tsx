/** The side panel: node label, config, result and resume form; edge condition; run inputs. */
import type { Ref } from "react";

import { ConditionEditor, ConfigEditor } from "./Editors";
import { ErrorView } from "./ErrorView";
import { ResumeForm } from "./ResumeForm";
import { type FormHandle, SchemaForm } from "./SchemaForm";
import type {
  EdgeSpec, Issue, NodeResult, NodeSpec, NodeTypeInfo, PendingItem, WorkflowDict,
} from "./types";

export type Selection =
  | { kind: "node"; id: string }
  | { kind: "edge"; index: number }
  | { kind: "run" }
  | null;

export function sameSelection(a: Selection, b: Selection): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export interface PanelProps {
  selection: Selection;
  graph: WorkflowDict;
  types: NodeTypeInfo[];
  issues: Issue[];
  results: Record<string, NodeResult>;
  pending: PendingItem[];
  /** The open edit form, for the editor to check before the selection changes. */
  guard: Ref<FormHandle>;
  /** The user left with unapplied edits that could not be applied: offer Apply / Discard. */
  unapplied: boolean;
  onUnapplied: (choice: "apply" | "discard") => void;
  onConfig: (node: string, config: Record<string, unknown>, label: string | null) => void;
  onCondition: (edge: number, condition: string | null) => void;
  onDelete: (selection: Selection) => void;
  onRun: (inputs: Record<string, unknown>) => void;
  onResume: (item: PendingItem, data: unknown) => void;
  onClose: () => void;
}

function NodeResultView(props: { result: NodeResult }): JSX.Element {
  const { result } = props;
  return (
    <section className="fm-result" data-testid="fm-result">
      <div>status <b>{result.status}</b>
        {result.duration_ms != null && <> · {Math.round(result.duration_ms)} ms</>}
        {result.attempts ? <> · {result.attempts} attempt(s)</> : null}
        {result.taken && result.taken.length > 0 && <> · route {result.taken.join(", ")}</>}
      </div>
      {result.error != null && <ErrorView error={result.error} />}
      {result.output != null && <pre className="fm-output">{result.output}</pre>}
    </section>
  );
}

function NodePanel(props: PanelProps & { id: string; spec: NodeSpec }): JSX.Element {
  const { id, spec, types, issues, results, pending } = props;
  const type = types.find((t) => t.name === spec.type);
  const result = results[id];
  const mine = issues.filter((i) => i.node === id);
  return (
    <div data-testid="fm-node-panel">
      <h3>{spec.label || id} <small>{spec.type}</small></h3>
      {mine.length > 0 && (
        <ul className="fm-issues">
          {mine.map((i) => <li key={i.location + i.message}><code>{i.location}</code> {i.message}</li>)}
        </ul>
      )}
      {pending.filter((p) => p.node === id).map((item) => (
        <ResumeForm key={item.run_id + item.path_id} item={item}
          fallback={type?.resume_schema ?? null} onResume={(data) => props.onResume(item, data)} />
      ))}
      {result && <NodeResultView result={result} />}
      <ConfigEditor key={`${id}:${spec.label ?? ""}:${JSON.stringify(spec.config ?? {})}`}
        id={id} spec={spec} type={type} guard={props.guard} onConfig={props.onConfig} />
      <button type="button" className="fm-button fm-danger"
        onClick={() => props.onDelete(props.selection)}>Delete node</button>
    </div>
  );
}

function EdgePanel(props: PanelProps & { index: number; edge: EdgeSpec }): JSX.Element {
  const { index, edge } = props;
  return (
    <div data-testid="fm-edge-panel">
      <h3>{edge.source} → {edge.target}</h3>
      {edge.source_handle && <p>route <code>{edge.source_handle}</code></p>}
      <ConditionEditor key={`${index}:${edge.condition ?? ""}`} index={index} edge={edge}
        guard={props.guard} onCondition={props.onCondition} />
      <button type="button" className="fm-button fm-danger"
        onClick={() => props.onDelete(props.selection)}>Delete edge</button>
    </div>
  );
}

function Unapplied(props: { onChoice: (choice: "apply" | "discard") => void }): JSX.Element {
  return (
    <div className="fm-unapplied" data-testid="fm-unapplied" role="alert">
      <span>Unapplied changes:</span>
      <button type="button" className="fm-button fm-primary" data-testid="fm-unapplied-apply"
        onClick={() => props.onChoice("apply")}>Apply</button>
      <button type="button" className="fm-button" data-testid="fm-unapplied-discard"
        onClick={() => props.onChoice("discard")}>Discard</button>
    </div>
  );
}

export function Panel(props: PanelProps): JSX.Element | null {
  const { selection, graph } = props;
  let body: JSX.Element | null = null;
  if (selection?.kind === "node") {
    const spec = graph.nodes?.[selection.id];
    if (spec) body = <NodePanel {...props} id={selection.id} spec={spec} />;
  } else if (selection?.kind === "edge") {
    const edge = graph.edges?.[selection.index];
    if (edge) body = <EdgePanel {...props} index={selection.index} edge={edge} />;
  } else if (selection?.kind === "run") {
    body = (
      <div data-testid="fm-run-panel">
        <h3>Run inputs</h3>
        <SchemaForm schema={graph.inputs ?? null} submitLabel="Run" testId="fm-run-form"
          onSubmit={props.onRun} />
      </div>
    );
  }
  if (body === null) return null;
  return (
    <aside className="fm-panel" data-testid="fm-panel">
      <button type="button" className="fm-close" aria-label="close" onClick={props.onClose}>×</button>
      {props.unapplied && <Unapplied onChoice={props.onUnapplied} />}
      {body}
    </aside>
  );
}
