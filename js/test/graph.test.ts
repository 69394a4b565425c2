import { describe, expect, it } from "vitest";

import { toFlow } from "../src/flow";
import { applyEdit, freeSpot, freeze, freshId, layout, NODE_HEIGHT, NODE_WIDTH, sourceHandles } from "../src/graph";
import type { WorkflowDict } from "../src/types";

const wf = (): WorkflowDict => ({
  id: "demo",
  nodes: {
    a: { type: "template", config: { template: "hi" } },
    b: { type: "branch", config: { routes: [] } },
    c: { type: "log", position: { x: 500, y: 20 } },
  },
  edges: [{ source: "a", target: "b" }, { source: "b", target: "c", source_handle: "yes" }],
  entry: ["a", "c"],
});

describe("applyEdit", () => {
  it("moves nodes (rounded) without touching the input", () => {
    const before = wf();
    const after = applyEdit(before, { kind: "move", positions: { a: { x: 10.4, y: 20.6 } } });
    expect(after.nodes?.a.position).toEqual({ x: 10, y: 21 });
    expect(before.nodes?.a.position).toBeUndefined();
  });

  it("connects once, with the route handle", () => {
    const once = applyEdit(wf(), { kind: "connect", source: "a", target: "c", source_handle: null });
    expect(once.edges).toHaveLength(3);
    expect(once.edges?.[2]).toEqual({ source: "a", target: "c" });
    const twice = applyEdit(once, { kind: "connect", source: "a", target: "c" });
    expect(twice.edges).toHaveLength(3);
    const routed = applyEdit(wf(), { kind: "connect", source: "b", target: "a", source_handle: "no" });
    expect(routed.edges?.[2]).toEqual({ source: "b", target: "a", source_handle: "no" });
  });

  it("refuses connections to unknown nodes or to itself", () => {
    expect(() => applyEdit(wf(), { kind: "connect", source: "a", target: "zz" })).toThrow(/unknown node/);
    expect(() => applyEdit(wf(), { kind: "connect", source: "a", target: "a" })).toThrow(/itself/);
  });

  it("deletes nodes with their edges and entries, and edges by index", () => {
    const out = applyEdit(wf(), { kind: "delete", nodes: ["b"] });
    expect(Object.keys(out.nodes ?? {})).toEqual(["a", "c"]);
    expect(out.edges).toEqual([]);
    const edgeOnly = applyEdit(wf(), { kind: "delete", edges: [0] });
    expect(edgeOnly.edges).toEqual([{ source: "b", target: "c", source_handle: "yes" }]);
    const entry = applyEdit(wf(), { kind: "delete", nodes: ["c"] });
    expect(entry.entry).toEqual(["a"]);
  });

  it("adds nodes with fresh identifier ids", () => {
    const one = applyEdit(wf(), { kind: "add", type: "template", position: { x: 1, y: 2 } });
    expect(one.nodes?.template_1).toEqual({ type: "template", position: { x: 1, y: 2 } });
    const two = applyEdit(one, { kind: "add", type: "template", position: { x: 0, y: 0 } });
    expect(Object.keys(two.nodes ?? {})).toContain("template_2");
    expect(freshId(wf(), "my-type")).toBe("my_type_1");
    expect(freshId(wf(), "9lives")).toBe("n_9lives_1");
    expect(() => applyEdit(one, { kind: "add", type: "x", id: "a", position: { x: 0, y: 0 } })).toThrow(
      /already exists/,
    );
  });

  it("replaces config and label, and edits conditions", () => {
    const out = applyEdit(wf(), { kind: "config", node: "a", config: { template: "yo" }, label: "Hello" });
    expect(out.nodes?.a).toEqual({ type: "template", config: { template: "yo" }, label: "Hello" });
    const unlabelled = applyEdit(out, { kind: "config", node: "a", config: {}, label: null });
    expect(unlabelled.nodes?.a.label).toBeUndefined();
    expect(() => applyEdit(wf(), { kind: "config", node: "nope", config: {} })).toThrow(/no node/);
    const cond = applyEdit(wf(), { kind: "condition", edge: 0, condition: "{{ true }}" });
    expect(cond.edges?.[0].condition).toBe("{{ true }}");
    const cleared = applyEdit(cond, { kind: "condition", edge: 0, condition: null });
    expect(cleared.edges?.[0]).toEqual({ source: "a", target: "b" });
  });
});

describe("layout", () => {
  it("keeps stored positions and lays out the others left to right", () => {
    const pos = layout(wf());
    expect(pos.c).toEqual({ x: 500, y: 20 });
    expect(pos.b.x).toBeGreaterThan(pos.a.x);
  });

  it("freezes a layout into missing positions only", () => {
    const pos = layout(wf());
    const frozen = freeze(wf(), pos);
    expect(frozen.nodes?.a.position).toEqual(pos.a);
    expect(frozen.nodes?.c.position).toEqual({ x: 500, y: 20 });
    expect(freeze(frozen, pos)).toBe(frozen);
  });

  it("finds a free spot for a new node", () => {
    const centre = { x: 100 + NODE_WIDTH / 2, y: 50 + NODE_HEIGHT / 2 };
    expect(freeSpot({}, centre)).toEqual({ x: 100, y: 50 });
    const spot = freeSpot({ a: { x: 100, y: 50 }, b: { x: 120, y: 130 } }, centre);
    expect(spot.x).toBe(100);
    expect(spot.y).toBeGreaterThanOrEqual(130 + NODE_HEIGHT + 10);
  });

  it("lays out 200 nodes", () => {
    const nodes: WorkflowDict["nodes"] = {};
    const edges = [];
    for (let i = 0; i < 200; i++) {
      nodes[`n${i}`] = { type: "template" };
      if (i > 0) edges.push({ source: `n${Math.floor((i - 1) / 2)}`, target: `n${i}` });
    }
    const pos = layout({ id: "big", nodes, edges });
    expect(Object.keys(pos)).toHaveLength(200);
    expect(pos.n1.x).toBeGreaterThan(pos.n0.x);
  });
});

describe("handles and flow elements", () => {
  it("gives routes, used handles and the default handle", () => {
    const handles = sourceHandles(wf(), { b: ["no"] });
    expect(handles.a).toEqual([null]);
    expect(handles.b).toEqual(["no", "yes"]);
  });

  it("puts issues, results and waiting on nodes and edges", () => {
    const flow = toFlow({
      graph: wf(),
      routes: { b: ["yes", "no"] },
      issues: [
        { location: "nodes.a.config", message: "bad", node: "a", edge: null },
        { location: "edges[1]", message: "bad edge", node: null, edge: 1 },
      ],
      results: { a: { status: "succeeded", duration_ms: 3 }, c: { status: "skipped" } },
      pending: [{ run_id: "r", node: "b", label: null, path_id: "b", payload: null, schema: null }],
    });
    const a = flow.nodes.find((n) => n.id === "a");
    expect(a?.data.issues).toHaveLength(1);
    expect(a?.data.result?.status).toBe("succeeded");
    expect(flow.nodes.find((n) => n.id === "b")?.data.waiting).toBe(true);
    expect(flow.edges[1].className).toContain("fm-edge-issue");
    expect(flow.edges[1].className).toContain("fm-edge-dead");
    expect(flow.edges[1].sourceHandle).toBe("yes");
    expect(flow.edges[1].label).toBeUndefined();
  });
});
