/** What a suspended node asks for: an approval (Approve / Reject), or a form built from the
 * resume schema that sends nothing until every required field is given. */
import { useState } from "react";

import { SchemaForm } from "./SchemaForm";
import { show } from "./show";
import type { JsonSchema, PendingItem } from "./types";

/** A resume schema of an approval decision: a required boolean `approved`. */
export function isDecision(schema: JsonSchema | null): boolean {
  const props = (schema?.properties ?? {}) as Record<string, JsonSchema>;
  const required = (schema?.required ?? []) as string[];
  return props.approved?.type === "boolean" && required.includes("approved");
}

/** A schema that takes anything (no named fields): asked for as one required JSON value. */
function wholeValue(schema: JsonSchema | null): JsonSchema | null {
  const props = schema?.properties as Record<string, unknown> | undefined;
  if (props && Object.keys(props).length > 0) return null;
  return { type: "object", required: ["data"],
    properties: { data: { ...(schema ?? {}), title: "data (JSON)" } } };
}

function payloadParts(payload: unknown): { text: string | null; rest: unknown } {
  if (payload !== null && typeof payload === "object" && !Array.isArray(payload)) {
    const { message, prompt, details, ...rest } = payload as Record<string, unknown>;
    const text = typeof message === "string" ? message : typeof prompt === "string" ? prompt : null;
    if (text !== null) {
      const more = details ?? (Object.keys(rest).length > 0 ? rest : null);
      return { text, rest: more };
    }
  }
  return { text: null, rest: payload };
}

/** One field of a payload as its schema describes it. */
export interface PayloadField {
  name: string;
  title: string;
  description: string | null;
  value: unknown;
}

const SHOWN_AS_TEXT = new Set(["message", "prompt", "details"]);

/** The fields of a payload its payload schema declares (in the schema's order, with their
 * titles and descriptions), beside the message/prompt shown as text; null when the schema
 * declares none the payload has. */
export function payloadFields(payload: unknown, schema: JsonSchema | null | undefined): PayloadField[] | null {
  if (!schema || payload === null || typeof payload !== "object" || Array.isArray(payload)) return null;
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const values = payload as Record<string, unknown>;
  const fields = Object.keys(props)
    .filter((name) => !SHOWN_AS_TEXT.has(name) && name in values)
    .map((name) => ({
      name,
      title: typeof props[name].title === "string" ? (props[name].title as string) : name,
      description: typeof props[name].description === "string" ? (props[name].description as string) : null,
      value: values[name],
    }));
  return fields.length > 0 ? fields : null;
}

function Payload(props: { payload: unknown; schema?: JsonSchema | null }): JSX.Element {
  const fields = payloadFields(props.payload, props.schema);
  let payload = props.payload;
  if (fields !== null) {  // what the schema lays out is not repeated under "details"
    const rest = { ...(props.payload as Record<string, unknown>) };
    for (const field of fields) delete rest[field.name];
    payload = rest;
  }
  const { text, rest } = payloadParts(payload);
  const folded = fields !== null && rest !== null && typeof rest === "object" && Object.keys(rest).length === 0
    ? null : rest;
  return (
    <>
      {text !== null && <div className="fm-payload fm-message" data-testid="fm-message-text">{text}</div>}
      {fields !== null && (
        <dl className="fm-payload fm-payload-fields" data-testid="fm-payload-fields">
          {fields.map((field) => (
            <div key={field.name} className="fm-payload-field">
              <dt title={field.description ?? undefined}>{field.title}</dt>
              <dd>{typeof field.value === "string" ? field.value : show(field.value)}</dd>
            </div>
          ))}
        </dl>
      )}
      {folded !== null && folded !== undefined && (
        <details className="fm-details" data-testid="fm-details">
          <summary>details</summary>
          <pre>{show(folded)}</pre>
        </details>
      )}
    </>
  );
}

function ApprovalForm(props: { onDecide: (data: Record<string, unknown>) => void }): JSX.Element {
  const [comment, setComment] = useState("");
  const [by, setBy] = useState("");
  const decide = (approved: boolean): void => {
    const data: Record<string, unknown> = { approved };
    if (comment.trim()) data.comment = comment.trim();
    if (by.trim()) data.by = by.trim();
    props.onDecide(data);
  };
  return (
    <div className="fm-form fm-approval" data-testid="fm-approval-form">
      <label className="fm-field">
        <span className="fm-field-name">comment</span>
        <textarea name="fm-field-comment" rows={2} value={comment}
          onChange={(e) => setComment(e.target.value)} />
      </label>
      <label className="fm-field">
        <span className="fm-field-name">by</span>
        <input type="text" name="fm-field-by" value={by} onChange={(e) => setBy(e.target.value)} />
      </label>
      <div className="fm-decide">
        <button type="button" className="fm-button fm-approve" data-testid="fm-approve"
          onClick={() => decide(true)}>Approve</button>
        <button type="button" className="fm-button fm-reject" data-testid="fm-reject"
          onClick={() => decide(false)}>Reject</button>
      </div>
    </div>
  );
}

/** Who may answer a suspension, as one line (null: anyone); says so when it is not you. */
export function assignment(item: PendingItem): string | null {
  const who = [...(item.assignees ?? []), ...(item.roles ?? []).map((r) => `role ${r}`)];
  if (who.length === 0) return null;
  return `Assigned to ${who.join(", ")}` + (item.mine === false ? ": not you, so no form here" : "");
}

export function ResumeForm(props: {
  item: PendingItem;
  fallback: JsonSchema | null;
  onResume: (data: unknown) => void;
}): JSX.Element {
  const { item } = props;
  const schema = item.schema ?? props.fallback;
  const whole = wholeValue(schema);
  return (
    <section className="fm-resume">
      <h4>Waiting: {item.label ?? item.path_id}</h4>
      <Payload payload={item.payload} schema={item.payload_schema} />
      {assignment(item) !== null && (
        <div className="fm-assigned" data-testid="fm-assigned">{assignment(item)}</div>
      )}
      {item.mine === false ? null : isDecision(schema) ? (
        <ApprovalForm onDecide={props.onResume} />
      ) : (
        <SchemaForm schema={whole ?? schema} submitLabel="Resume" testId="fm-resume-form"
          onSubmit={(data) => props.onResume(whole ? data.data : data)} />
      )}
    </section>
  );
}
