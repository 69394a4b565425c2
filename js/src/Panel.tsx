/** The side panel: node config, results and resume form; edge condition; run inputs. */
import { SchemaForm } from "./SchemaForm";
import type {
  EdgeSpec, Issue, NodeResult, NodeSpec, NodeTypeInfo, PendingItem, WorkflowDict,
} from "./types";

export type Selection =
  | { kind: "node"; id: string }
  | { kind: "edge"; index: number }
  | { kind: "run" }
  | null;

export interface PanelProps {
  selection: Selection;
  graph: WorkflowDict;
  types: NodeTypeInfo[];
  issues: Issue[];
  results: Record<string, NodeResult>;
  pending: PendingItem[];
  onConfig: (node: string, config: Record<string, unknown>, label: string | null) => void;
  onCondition: (edge: number, condition: string | null) => void;
  onDelete: (selection: Selection) => void;
  onRun: (inputs: Record<string, unknown>) => void;
  onResume: (item: PendingItem, data: Record<string, unknown>) => void;
  onClose: () => void;
}

function show(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function NodePanel(props: PanelProps & { id: string; spec: NodeSpec }): JSX.Element {
  const { id, spec, types, issues, results, pending } = props;
  const type = types.find((t) => t.name === spec.type);
  const result = results[id];
  const waiting = pending.filter((p) => p.node === id);
  const config = spec.config ?? {};
  const labelSchema = { properties: { label: { type: "string", title: "label" } } };
  const mine = issues.filter((i) => i.node === id);
  return (
    <div data-testid="fm-node-panel">
      <h3>{spec.label || id} <small>{spec.type}</small></h3>
      {mine.length > 0 && (
        <ul className="fm-issues">
          {mine.map((i) => <li key={i.location + i.message}><code>{i.location}</code> {i.message}</li>)}
        </ul>
      )}
      {waiting.map((item) => (
        <section key={item.run_id + item.path_id} className="fm-resume">
          <h4>Waiting: {item.label ?? item.path_id}</h4>
          {item.payload != null && <pre className="fm-payload">{show(item.payload)}</pre>}
          <SchemaForm schema={item.schema ?? type?.resume_schema ?? { properties: {} }}
            submitLabel="Resume" testId="fm-resume-form"
            onSubmit={(data) => props.onResume(item, data)} />
        </section>
      ))}
      {result && (
        <section className="fm-result" data-testid="fm-result">
          <div>status <b>{result.status}</b>
            {result.duration_ms != null && <> · {Math.round(result.duration_ms)} ms</>}
            {result.attempts ? <> · {result.attempts} attempt(s)</> : null}
          </div>
          {result.error != null && <pre className="fm-error">{show(result.error)}</pre>}
          {result.output != null && <pre className="fm-output">{result.output}</pre>}
        </section>
      )}
      <section>
        <h4>Config</h4>
        {type === undefined && <p className="fm-error">unknown node type {spec.type}</p>}
        <SchemaForm key={`label:${id}:${spec.label ?? ""}:${JSON.stringify(config)}`}
          schema={{ ...(type?.schema ?? { properties: {} }),
            properties: { ...labelSchema.properties,
              ...((type?.schema.properties as Record<string, unknown>) ?? {}) } }}
          value={{ ...config, label: spec.label ?? undefined }}
          submitLabel="Apply" testId="fm-config-form"
          onSubmit={(value) => {
            const { label, ...rest } = value;
            props.onConfig(id, rest, typeof label === "string" ? label : null);
          }} />
      </section>
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
      <SchemaForm key={`${index}:${edge.condition ?? ""}`}
        schema={{ properties: { condition: { type: "string",
          description: "Template; the edge is taken when it renders truthy" } } }}
        value={{ condition: edge.condition ?? undefined }} submitLabel="Apply"
        onSubmit={(v) => props.onCondition(index, typeof v.condition === "string" ? v.condition : null)} />
      <button type="button" className="fm-button fm-danger"
        onClick={() => props.onDelete(props.selection)}>Delete edge</button>
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
    <aside className="fm-panel">
      <button type="button" className="fm-close" aria-label="close" onClick={props.onClose}>×</button>
      {body}
    </aside>
  );
}
