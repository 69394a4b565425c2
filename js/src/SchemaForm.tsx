/** A form generated from a JSON schema (node configs, resume data, run inputs). Nothing is
 * sent while a field is invalid: each problem is shown on its field. */
import { type Ref, useImperativeHandle, useMemo, useState } from "react";

import { collect, type Field, fieldsFromSchema, type Raw, toRaw } from "./schema";
import type { JsonSchema } from "./types";

/** What a parent can ask of a form: has it unapplied edits, and apply them (false: refused,
 * the problems are shown). */
export interface FormHandle {
  dirty: () => boolean;
  apply: () => boolean;
}

export interface SchemaFormProps {
  schema: JsonSchema | null;
  value?: Record<string, unknown>;
  submitLabel: string;
  onSubmit: (value: Record<string, unknown>) => void;
  testId?: string;
  handle?: Ref<FormHandle>;
  /** Edits outside the fields (e.g. the node label) that also make the form dirty. */
  extraDirty?: boolean;
}

function Input(props: { field: Field; raw: Raw; onChange: (raw: Raw) => void }): JSX.Element {
  const { field, raw, onChange } = props;
  const name = `fm-field-${field.name}`;
  if (field.kind === "boolean" && typeof raw === "string") {
    return (
      <select name={name} value={raw} onChange={(e) => onChange(e.target.value)}>
        <option value="">— choose —</option>
        <option value="true">yes</option>
        <option value="false">no</option>
      </select>
    );
  }
  if (field.kind === "boolean") {
    return (
      <input type="checkbox" name={name} checked={raw === true}
        onChange={(e) => onChange(e.target.checked)} />
    );
  }
  if (field.kind === "enum") {
    return (
      <select name={name} value={String(raw)} onChange={(e) => onChange(e.target.value)}>
        {(!field.required || raw === "") && (
          <option value="">
            {field.default !== undefined && field.default !== null ? `default (${String(field.default)})` : "—"}
          </option>
        )}
        {(field.options ?? []).map((o) => (
          <option key={JSON.stringify(o)} value={JSON.stringify(o)}>{String(o)}</option>
        ))}
      </select>
    );
  }
  if (field.kind === "text" || field.kind === "json" || field.kind === "any") {
    return (
      <textarea name={name} rows={field.kind === "text" ? 4 : 3} value={String(raw)}
        placeholder={field.kind === "text" ? "" : "JSON or text"}
        onChange={(e) => onChange(e.target.value)} />
    );
  }
  return (
    <input type="text" name={name} value={String(raw)}
      inputMode={field.kind === "string" ? "text" : "decimal"}
      placeholder={field.default !== undefined && field.default !== null ? String(field.default) : ""}
      onChange={(e) => onChange(e.target.value)} />
  );
}

function rawsOf(fields: Field[], value: Record<string, unknown>): Record<string, Raw> {
  return Object.fromEntries(fields.map((f) => [f.name, toRaw(f, value[f.name])]));
}

export function SchemaForm(props: SchemaFormProps): JSX.Element {
  const { schema, value = {}, submitLabel, onSubmit, testId } = props;
  const fields = useMemo(() => fieldsFromSchema(schema), [schema]);
  const [initial, setInitial] = useState(() => rawsOf(fields, value));
  const [raws, setRaws] = useState<Record<string, Raw>>(initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const apply = (): boolean => {
    const result = collect(fields, raws, value);
    setErrors(result.errors);
    if (Object.keys(result.errors).length > 0) return false;
    setInitial(raws);
    onSubmit(result.value);
    return true;
  };
  const dirty = (): boolean =>
    Boolean(props.extraDirty) || fields.some((f) => raws[f.name] !== initial[f.name]);
  useImperativeHandle(props.handle, () => ({ dirty, apply }));
  const problems = Object.keys(errors).length;
  return (
    <form className="fm-form" data-testid={testId} noValidate
      onSubmit={(e) => { e.preventDefault(); apply(); }}>
      {fields.map((f) => (
        <label key={f.name} className={`fm-field fm-kind-${f.kind}`} title={f.description}>
          <span className="fm-field-name">
            {f.title}
            {f.required ? " *" : ""}
          </span>
          <Input field={f} raw={raws[f.name] ?? ""}
            onChange={(raw) => setRaws((r) => ({ ...r, [f.name]: raw }))} />
          {errors[f.name] && (
            <span className="fm-error fm-field-error" data-field={f.name}>{errors[f.name]}</span>
          )}
        </label>
      ))}
      {problems > 0 && (
        <p className="fm-error" data-testid="fm-form-refused">
          Not sent: fix {problems === 1 ? "the field" : `${problems} fields`} above.
        </p>
      )}
      <button type="submit" className="fm-button fm-primary">{submitLabel}</button>
    </form>
  );
}
