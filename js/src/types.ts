/** Shapes shared with the Python side (src/fm_lab/widget/model.py). */

export interface XY {
  x: number;
  y: number;
}

export interface NodeSpec {
  type: string;
  config?: Record<string, unknown>;
  label?: string | null;
  position?: XY | null;
  [key: string]: unknown;
}

export interface EdgeSpec {
  source: string;
  target: string;
  source_handle?: string | null;
  condition?: string | null;
}

/** A workflow in its canonical JSON form (`Workflow.to_dict()`). */
export interface WorkflowDict {
  id: string;
  nodes?: Record<string, NodeSpec>;
  edges?: EdgeSpec[];
  entry?: string[];
  inputs?: JsonSchema;
  [key: string]: unknown;
}

export type JsonSchema = { [key: string]: unknown };

export interface NodeTypeInfo {
  name: string;
  description: string;
  schema: JsonSchema;
  resume_schema: JsonSchema | null;
}

export interface Issue {
  location: string;
  message: string;
  node: string | null;
  edge: number | null;
}

export type Status =
  | "pending"
  | "running"
  | "succeeded"
  | "failed"
  | "skipped"
  | "suspended"
  | "cached"
  | "cancelled";

export interface NodeResult {
  status: Status;
  duration_ms?: number | null;
  attempts?: number | null;
  error?: unknown;
  output?: string | null;
  /** The route handles a finished node took (null: it follows every edge). */
  taken?: string[] | null;
}

export interface PendingItem {
  run_id: string;
  node: string;
  label: string | null;
  path_id: string;
  payload: unknown;
  schema: JsonSchema | null;
  /** the JSON schema of `payload`, when the node declared one (fields shown by it) */
  payload_schema?: JsonSchema | null;
  /** who may answer (both empty: anyone), and whether the current user may */
  assignees?: string[];
  roles?: string[];
  mine?: boolean;
}

export interface RunInfo {
  run_id?: string;
  status?: string;
  error?: unknown;
  message?: string;
  policy?: string | null; // the execution policy the run was under (trusted | restricted)
}
