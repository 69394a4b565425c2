/** JSON schema -> form fields, and form text -> JSON values (no React here). */
import type { JsonSchema } from "./types";

/** `json`: an object/array/union typed as JSON text; `any`: an untyped field (text is kept as
 * a string unless it reads as JSON, e.g. a template "{{ ... }}" stays a string). */
export type FieldKind =
  | "string" | "text" | "number" | "integer" | "boolean" | "enum" | "json" | "any";

export interface Field {
  name: string;
  title: string;
  kind: FieldKind;
  required: boolean;
  nullable: boolean;
  description?: string;
  options?: unknown[];
  default?: unknown;
}

/** What an input holds: text, or a checkbox state. A required boolean is a yes/no choice
 * with no default ("", "true" or "false"): leaving it unset never means false. */
export type Raw = string | boolean;

const LONG_TEXT = /template|prompt|code|message|system|expression|body|instructions/i;

function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref === "string" && ref.startsWith("#/$defs/")) {
    const defs = (root.$defs ?? {}) as Record<string, JsonSchema>;
    const target = defs[ref.slice("#/$defs/".length)];
    if (target) return { ...target, ...schema, $ref: undefined };
  }
  return schema;
}

const TYPED = { properties: 1, items: 1, allOf: 1, additionalProperties: 1 };

function kindOf(schema: JsonSchema, name: string): { kind: FieldKind; nullable: boolean } {
  let nullable = false;
  let s = schema;
  const variants = (s.anyOf ?? s.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(variants)) {
    const real = variants.filter((v) => v.type !== "null");
    nullable = real.length < variants.length;
    if (real.length !== 1) return { kind: "json", nullable };
    s = real[0];
  }
  if (Array.isArray(s.enum)) return { kind: "enum", nullable };
  if (s.const !== undefined) return { kind: "enum", nullable };
  let type = s.type;
  if (Array.isArray(type)) {
    nullable = nullable || type.includes("null");
    const real = type.filter((t) => t !== "null");
    type = real.length === 1 ? real[0] : undefined;
  }
  switch (type) {
    case "string":
      return { kind: LONG_TEXT.test(name) || s.format === "textarea" ? "text" : "string", nullable };
    case "integer":
      return { kind: "integer", nullable };
    case "number":
      return { kind: "number", nullable };
    case "boolean":
      return { kind: "boolean", nullable };
    case undefined:
      return { kind: Object.keys(s).some((k) => k in TYPED) ? "json" : "any", nullable };
    default:
      return { kind: "json", nullable };
  }
}

/** The form fields of an object schema (pydantic's `model_json_schema()` output). */
export function fieldsFromSchema(schema: JsonSchema | null | undefined): Field[] {
  if (!schema) return [];
  const root = resolve(schema, schema);
  const props = (root.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((root.required ?? []) as string[]);
  return Object.entries(props).map(([name, raw]) => {
    const prop = resolve(raw, schema);
    const { kind, nullable } = kindOf(prop, name);
    let options: unknown[] | undefined;
    if (kind === "enum") {
      const variants = ((prop.anyOf ?? prop.oneOf) as JsonSchema[] | undefined)?.filter(
        (v) => v.type !== "null",
      );
      const inner = variants?.[0] ?? prop;
      options = Array.isArray(inner.enum) ? inner.enum : [inner.const];
    }
    const field: Field = {
      name,
      title: typeof prop.title === "string" ? prop.title : name,
      kind,
      required: required.has(name),
      nullable,
    };
    if (typeof prop.description === "string") field.description = prop.description;
    if (options) field.options = options;
    if ("default" in prop) field.default = prop.default;
    return field;
  });
}

/** The input text for a field holding `value` (undefined: the field is unset). */
export function toRaw(field: Field, value: unknown): Raw {
  if (field.kind === "boolean" && field.required) {
    return value === true ? "true" : value === false ? "false" : "";
  }
  if (field.kind === "boolean") {
    const v = value === undefined ? field.default : value;
    return v === true;
  }
  if (value === undefined || value === null) return "";
  if (field.kind === "any" && typeof value === "string") return value;
  if (field.kind === "json" || field.kind === "any") return JSON.stringify(value, null, 2);
  if (field.kind === "enum") return JSON.stringify(value);
  return String(value);
}

export type Parsed = { ok: true; value: unknown; omit: boolean } | { ok: false; error: string };

const TEMPLATE = /\{\{.*\}\}/s;
/** One whole template and nothing else, e.g. "{{ inputs.review }}". */
const WHOLE_TEMPLATE = /^\{\{(?:(?!\{\{|\}\}).)*\}\}$/s;
/** Text that means to be JSON: an object, array or quoted string (not a template). */
const LOOKS_JSON = /^(?:\{(?!\{)|\[|")/;

function jsonProblem(text: string): string | null {
  try {
    JSON.parse(text);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Turn one input back into a JSON value, or an error naming the problem. */
export function parseRaw(field: Field, raw: Raw): Parsed {
  if (field.kind === "boolean" && typeof raw === "string") {
    if (raw === "true" || raw === "false") return { ok: true, value: raw === "true", omit: false };
    if (field.required) return { ok: false, error: `${field.title}: choose yes or no` };
    return { ok: true, value: undefined, omit: true };
  }
  if (field.kind === "boolean") {
    const value = raw === true;
    const unchanged = value === (field.default === true);
    return { ok: true, value, omit: unchanged && !field.required };
  }
  const text = typeof raw === "string" ? raw : String(raw);
  if (text.trim() === "") {
    if (field.required) return { ok: false, error: `${field.title} is required` };
    return { ok: true, value: undefined, omit: true };
  }
  switch (field.kind) {
    case "integer":
    case "number": {
      const n = Number(text);
      const valid = Number.isFinite(n) && (field.kind === "number" || Number.isInteger(n));
      if (valid) return { ok: true, value: n, omit: false };
      // templates such as "{{ inputs.n }}" are rendered before validation by the engine
      if (TEMPLATE.test(text)) return { ok: true, value: text, omit: false };
      return { ok: false, error: `${field.title} must be ${field.kind === "integer" ? "an integer" : "a number"}` };
    }
    case "any": {
      // text stays text (e.g. "pay {{ x }}") unless it means to be JSON; then it must parse
      const trimmed = text.trim();
      const problem = jsonProblem(trimmed);
      if (problem === null) return { ok: true, value: JSON.parse(trimmed), omit: false };
      if (LOOKS_JSON.test(trimmed)) return { ok: false, error: `${field.title} is not valid JSON: ${problem}` };
      return { ok: true, value: text, omit: false };
    }
    case "enum":
    case "json": {
      const trimmed = text.trim();
      const problem = jsonProblem(trimmed);
      if (problem === null) return { ok: true, value: JSON.parse(trimmed), omit: false };
      // only one whole template may stand for a JSON value (rendered by the engine)
      if (field.kind === "json" && WHOLE_TEMPLATE.test(trimmed)) return { ok: true, value: trimmed, omit: false };
      return { ok: false, error: `${field.title} is not valid JSON: ${problem}` };
    }
    default:
      return { ok: true, value: text, omit: false };
  }
}

/** Collect a whole form: the value object (unknown keys of `base` kept) and per-field errors. */
export function collect(
  fields: Field[],
  raws: Record<string, Raw>,
  base: Record<string, unknown> = {},
): { value: Record<string, unknown>; errors: Record<string, string> } {
  const known = new Set(fields.map((f) => f.name));
  const value: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) if (!known.has(k)) value[k] = v;
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const raw = raws[field.name] ?? toRaw(field, base[field.name]);
    const parsed = parseRaw(field, raw);
    if (!parsed.ok) errors[field.name] = parsed.error;
    else if (!parsed.omit || field.name in base) {
      if (parsed.value !== undefined) value[field.name] = parsed.value;
    }
  }
  return { value, errors };
}
