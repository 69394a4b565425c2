import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";

import { ConfigEditor } from "../src/Editors";
import { ErrorView } from "../src/ErrorView";
import { isDecision, payloadFields, ResumeForm } from "../src/ResumeForm";
import { errorParts } from "../src/show";
import type { PendingItem } from "../src/types";

const DECISION = {
  type: "object", required: ["approved"],
  properties: { approved: { type: "boolean" }, comment: { anyOf: [{ type: "string" }, { type: "null" }] },
    by: { anyOf: [{ type: "string" }, { type: "null" }] } },
};

const item = (payload: unknown, schema: unknown): PendingItem => ({
  run_id: "r", node: "check", label: null, path_id: "check", payload,
  schema: schema as PendingItem["schema"],
});

const INVOICE = {
  type: "object", required: ["vendor", "amount"],
  properties: { vendor: { type: "string", title: "Vendor", description: "who sent it" },
    amount: { type: "number", title: "Amount (EUR)" }, lines: { type: "array" } },
};

describe("suspend payload schemas", () => {
  it("lay a payload out by its schema: titles, descriptions, schema order", () => {
    const fields = payloadFields({ amount: 12.5, vendor: "ACME", extra: 1 }, INVOICE);
    expect(fields?.map((f) => [f.name, f.title, f.description, f.value])).toEqual([
      ["vendor", "Vendor", "who sent it", "ACME"], ["amount", "Amount (EUR)", null, 12.5]]);
    expect(payloadFields({ amount: 1 }, null)).toBeNull();
    expect(payloadFields({ message: "Pay?" }, { properties: { message: { type: "string" } } })).toBeNull();
    expect(payloadFields("text", INVOICE)).toBeNull();
  });

  it("show the fields in the form, and only what the schema leaves out as details", () => {
    const html = renderToStaticMarkup(
      <ResumeForm item={{ ...item({ message: "Pay this?", vendor: "ACME", amount: 12.5, note: "n" },
        DECISION), payload_schema: INVOICE }} fallback={null} onResume={() => undefined} />,
    );
    expect(html).toContain('data-testid="fm-message-text">Pay this?</div>');
    expect(html).toContain('data-testid="fm-payload-fields"');
    expect(html).toContain('<dt title="who sent it">Vendor</dt><dd>ACME</dd>');
    expect(html).toContain("<dt>Amount (EUR)</dt><dd>12.5</dd>");
    expect(html).toMatch(/<summary>details<\/summary><pre>\{\n {2}&quot;note&quot;/);
    expect(html).not.toContain("&quot;vendor&quot;");
  });
});

describe("resume forms", () => {
  it("know an approval decision", () => {
    expect(isDecision(DECISION)).toBe(true);
    expect(isDecision({ properties: { approved: { type: "boolean" } } })).toBe(false);
    expect(isDecision(null)).toBe(false);
  });

  it("show an approval's message as text, details folded, and two buttons", () => {
    const html = renderToStaticMarkup(
      <ResumeForm item={item({ message: "Pay 12 EUR?", details: { vendor: "ACME" } }, DECISION)}
        fallback={null} onResume={() => undefined} />,
    );
    expect(html).toContain('data-testid="fm-message-text">Pay 12 EUR?</div>');
    expect(html).toMatch(/<details[^>]*><summary>details<\/summary><pre>\{\n {2}&quot;vendor&quot;/);
    expect(html).toContain('data-testid="fm-approve"');
    expect(html).toContain('data-testid="fm-reject"');
    expect(html).not.toContain('type="submit"');
    expect(html).not.toContain("&quot;message&quot;");
  });

  it("show who an approval is assigned to, and no form to anyone else", () => {
    const assigned = { ...item({ message: "Pay?" }, DECISION), assignees: ["bob"], roles: ["finance"] };
    const theirs = renderToStaticMarkup(
      <ResumeForm item={{ ...assigned, mine: false }} fallback={null} onResume={() => undefined} />,
    );
    expect(theirs).toContain("Assigned to bob, role finance: not you, so no form here");
    expect(theirs).not.toContain('data-testid="fm-approve"');
    const mine = renderToStaticMarkup(
      <ResumeForm item={{ ...assigned, mine: true }} fallback={null} onResume={() => undefined} />,
    );
    expect(mine).toContain("Assigned to bob, role finance</div>");
    expect(mine).toContain('data-testid="fm-approve"');
  });

  it("ask for the whole value when the schema names no fields", () => {
    const html = renderToStaticMarkup(
      <ResumeForm item={item({ prompt: "Your review?" }, { type: "object" })} fallback={null}
        onResume={() => undefined} />,
    );
    expect(html).toContain("Your review?");
    expect(html).toContain('name="fm-field-data"');
    expect(html).toContain("data (JSON) *");
  });
});

describe("config editor", () => {
  it("edits the node label apart from a config key named label", () => {
    const html = renderToStaticMarkup(
      <ConfigEditor id="check" spec={{ type: "approval", label: "Approve?",
        config: { message: "m", label: "pay-check" } }}
      type={{ name: "approval", description: "", resume_schema: null,
        schema: { properties: { message: { type: "string" }, label: { type: "string" } } } }}
      onConfig={() => undefined} />,
    );
    expect(html).toMatch(/name="fm-node-label"[^>]*value="Approve\?"/);
    expect(html).toMatch(/name="fm-field-label"[^>]*value="pay-check"/);
  });
});

describe("errors", () => {
  const error = { type: "ValueError", kind: "user", message: "no luck", traceback: "Traceback...\n" };

  it("read as type and message, the traceback folded", () => {
    expect(errorParts(error)).toEqual({ title: "ValueError (user)", message: "no luck",
      traceback: "Traceback...\n" });
    expect(errorParts("plain")).toEqual({ title: "Error", message: "plain", traceback: null });
    const html = renderToStaticMarkup(<ErrorView error={error} />);
    expect(html).toContain("<b>ValueError (user)</b>: <span class=\"fm-error-message\">no luck</span>");
    expect(html).toContain("<details class=\"fm-traceback\"><summary>traceback</summary>");
  });
});
