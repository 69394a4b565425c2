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

function Payload(props: { payload: unknown }): JSX.Element {
  const { text, rest } = payloadParts(props.payload);
  return (
    <>
      {text !== null && <div className="fm-payload fm-message" data-testid="fm-message-text">{text}</div>}
      {rest !== null && rest !== undefined && (
        <details className="fm-details" data-testid="fm-details">
          <summary>details</summary>
          <pre>{show(rest)}</pre>
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
      <Payload payload={item.payload} />
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
