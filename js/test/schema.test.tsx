import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";

import { collect, fieldsFromSchema, parseRaw, toRaw } from "../src/schema";
import { SchemaForm } from "../src/SchemaForm";

// what pydantic's model_json_schema() gives for a node config
const CONFIG = {
  type: "object",
  required: ["message"],
  properties: {
    message: { type: "string", title: "Message", description: "What is asked." },
    timeout_s: { anyOf: [{ type: "number", exclusiveMinimum: 0 }, { type: "null" }], default: null },
    on_timeout: { enum: ["reject", "fail"], type: "string", default: "reject" },
    retries: { type: "integer", default: 1 },
    notify: { type: "boolean", default: false },
    details: { default: null },
    template: { description: "Text with {{ ... }}", title: "Template" },
    headers: { type: "object", additionalProperties: { type: "string" } },
    mode: { $ref: "#/$defs/Mode" },
  },
  $defs: { Mode: { enum: ["fast", "slow"], type: "string" } },
};

describe("fieldsFromSchema", () => {
  it("maps JSON schema types to inputs", () => {
    const fields = Object.fromEntries(fieldsFromSchema(CONFIG).map((f) => [f.name, f]));
    expect(fields.message).toMatchObject({ kind: "text", required: true, title: "Message" });
    expect(fields.timeout_s).toMatchObject({ kind: "number", nullable: true, required: false });
    expect(fields.on_timeout).toMatchObject({ kind: "enum", options: ["reject", "fail"] });
    expect(fields.retries.kind).toBe("integer");
    expect(fields.notify.kind).toBe("boolean");
    expect(fields.details.kind).toBe("any");
    expect(fields.template.kind).toBe("any");
    expect(fields.headers.kind).toBe("json");
    expect(fields.mode).toMatchObject({ kind: "enum", options: ["fast", "slow"] });
  });

  it("has no fields without a schema", () => {
    expect(fieldsFromSchema(null)).toEqual([]);
  });
});

describe("parsing", () => {
  const fields = Object.fromEntries(fieldsFromSchema(CONFIG).map((f) => [f.name, f]));

  it("names the problem", () => {
    expect(parseRaw(fields.message, "")).toEqual({ ok: false, error: "Message is required" });
    expect(parseRaw(fields.retries, "1.5")).toEqual({ ok: false, error: "retries must be an integer" });
    expect(parseRaw(fields.timeout_s, "soon")).toEqual({ ok: false, error: "timeout_s must be a number" });
    const bad = parseRaw(fields.headers, "{oops");
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(/^headers is not valid JSON: /);
  });

  it("accepts numbers, templates, JSON and enums", () => {
    expect(parseRaw(fields.retries, "3")).toEqual({ ok: true, value: 3, omit: false });
    expect(parseRaw(fields.retries, "{{ inputs.n }}")).toEqual({ ok: true, value: "{{ inputs.n }}", omit: false });
    expect(parseRaw(fields.details, '{"a": [1]}')).toEqual({ ok: true, value: { a: [1] }, omit: false });
    expect(parseRaw(fields.on_timeout, '"fail"')).toEqual({ ok: true, value: "fail", omit: false });
  });

  it("keeps text in untyped fields, and JSON values as values", () => {
    expect(parseRaw(fields.template, "pay {{ x }}")).toEqual({ ok: true, value: "pay {{ x }}", omit: false });
    expect(parseRaw(fields.template, "{{ x }}")).toEqual({ ok: true, value: "{{ x }}", omit: false });
    expect(parseRaw(fields.details, "[1, 2]")).toEqual({ ok: true, value: [1, 2], omit: false });
    expect(toRaw(fields.template, "pay {{ x }}")).toBe("pay {{ x }}");
  });

  it("round-trips values through the inputs", () => {
    expect(toRaw(fields.details, { a: 1 })).toBe('{\n  "a": 1\n}');
    expect(toRaw(fields.notify, undefined)).toBe(false);
    expect(toRaw(fields.on_timeout, "fail")).toBe('"fail"');
    expect(toRaw(fields.timeout_s, null)).toBe("");
  });

  it("collects a form, leaving out empty optional fields and keeping unknown keys", () => {
    const fs = fieldsFromSchema(CONFIG);
    const out = collect(fs, { message: "ok?", retries: "2", notify: true }, { extra: 1 });
    expect(out.errors).toEqual({});
    expect(out.value).toEqual({ extra: 1, message: "ok?", retries: 2, notify: true });
    const bad = collect(fs, { message: "" }, {});
    expect(bad.errors).toEqual({ message: "Message is required" });
    const cleared = collect(fs, { message: "m", timeout_s: "" }, { message: "m", timeout_s: 5 });
    expect(cleared.value).toEqual({ message: "m" });
  });
});

describe("JSON fields", () => {
  const fields = Object.fromEntries(fieldsFromSchema(CONFIG).map((f) => [f.name, f]));
  const TRAILING = '{"text": "{{ inputs.review }}",}';

  it("refuses text that does not parse, whatever templates it holds", () => {
    for (const field of [fields.headers, fields.details]) {
      const out = parseRaw(field, TRAILING);
      expect(out.ok).toBe(false);
      expect(!out.ok && out.error).toMatch(new RegExp(`^${field.title} is not valid JSON: .+`));
    }
    expect(parseRaw(fields.headers, "{{ a }} and {{ b }}").ok).toBe(false);
    expect(parseRaw(fields.headers, "[1, {{ x }}]").ok).toBe(false);
    expect(parseRaw(fields.details, "[1, 2,]").ok).toBe(false);
  });

  it("keeps one whole template as a string, and parses JSON holding templates", () => {
    expect(parseRaw(fields.headers, " {{ inputs.headers }} ")).toEqual(
      { ok: true, value: "{{ inputs.headers }}", omit: false });
    expect(parseRaw(fields.headers, '{"a": "{{ x }}"}')).toEqual(
      { ok: true, value: { a: "{{ x }}" }, omit: false });
    expect(parseRaw(fields.details, "{{ x }} and text")).toEqual(
      { ok: true, value: "{{ x }} and text", omit: false });
  });
});

describe("required booleans", () => {
  const decision = fieldsFromSchema({
    type: "object", required: ["approved"],
    properties: { approved: { type: "boolean" }, comment: { type: "string" } },
  });
  const approved = decision[0];

  it("are an explicit yes/no choice with no default", () => {
    expect(toRaw(approved, undefined)).toBe("");
    expect(parseRaw(approved, "")).toEqual({ ok: false, error: "approved: choose yes or no" });
    expect(parseRaw(approved, "false")).toEqual({ ok: true, value: false, omit: false });
    expect(parseRaw(approved, "true")).toEqual({ ok: true, value: true, omit: false });
  });

  it("make an empty form refused, with nothing collected", () => {
    const out = collect(decision, {}, {});
    expect(out.errors).toEqual({ approved: "approved: choose yes or no" });
  });

  it("render as a select, not a checkbox", () => {
    const html = renderToStaticMarkup(
      <SchemaForm schema={{ type: "object", required: ["approved"],
        properties: { approved: { type: "boolean" } } }} submitLabel="Resume"
      onSubmit={() => undefined} />,
    );
    expect(html).toMatch(/<select name="fm-field-approved">/);
    expect(html).not.toContain('type="checkbox"');
  });
});

describe("SchemaForm", () => {
  it("renders one input per field with the current values", () => {
    const html = renderToStaticMarkup(
      <SchemaForm schema={CONFIG} value={{ message: "Pay?", retries: 4 }} submitLabel="Apply"
        onSubmit={() => undefined} testId="form" />,
    );
    expect(html).toContain('data-testid="form"');
    expect(html).toMatch(/<textarea name="fm-field-message"[^>]*>Pay\?<\/textarea>/);
    expect(html).toContain('name="fm-field-retries"');
    expect(html).toContain('value="4"');
    expect(html).toContain('type="checkbox"');
    expect(html).toContain("Message *");
    expect(html).toContain(">Apply</button>");
  });
});
