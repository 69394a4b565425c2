/** A form generated from a JSON schema (node configs, resume data, run inputs). */
import { useMemo, useState } from "react";

import { collect, type Field, fieldsFromSchema, type Raw, toRaw } from "./schema";
import type { JsonSchema } from "./types";

export interface SchemaFormProps {
  schema: JsonSchema | null;
  value?: Record<string, unknown>;
  submitLabel: string;
  onSubmit: (value: Record<string, unknown>) => void;
  testId?: string;
}

function Input(props: { field: Field; raw: Raw; onChange: (raw: Raw) => void }): JSX.Element {
  const { field, raw, onChange } = props;
  const name = `fm-field-${field.name}`;
  if (field.kind === "boolean") {
    return (
      <input type="checkbox" name={name} checked={raw === true}
        onChange={(e) => onChange(e.target.checked)} />
    );
  }
  if (field.kind === "enum") {
    return (
      <select name={name} value={String(raw)} onChange={(e) => onChange(e.target.value)}>
        {!field.required && (
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

export function SchemaForm(props: SchemaFormProps): JSX.Element {
  const { schema, value = {}, submitLabel, onSubmit, testId } = props;
  const fields = useMemo(() => fieldsFromSchema(schema), [schema]);
  const [raws, setRaws] = useState<Record<string, Raw>>(() =>
    Object.fromEntries(fields.map((f) => [f.name, toRaw(f, value[f.name])])),
  );
  const [errors, setErrors] = useState<Record<string, string>>({});
  const submit = (e: { preventDefault: () => void }): void => {
    e.preventDefault();
    const result = collect(fields, raws, value);
    setErrors(result.errors);
    if (Object.keys(result.errors).length === 0) onSubmit(result.value);
  };
  return (
    <form className="fm-form" data-testid={testId} onSubmit={submit}>
      {fields.map((f) => (
        <label key={f.name} className={`fm-field fm-kind-${f.kind}`} title={f.description}>
          <span className="fm-field-name">
            {f.title}
            {f.required ? " *" : ""}
          </span>
          <Input field={f} raw={raws[f.name] ?? ""}
            onChange={(raw) => setRaws((r) => ({ ...r, [f.name]: raw }))} />
          {errors[f.name] && <span className="fm-error">{errors[f.name]}</span>}
        </label>
      ))}
      <button type="submit" className="fm-button fm-primary">{submitLabel}</button>
    </form>
  );
}
