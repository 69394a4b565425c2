import { describe, expect, it } from "vitest";

import palette from "../../src/fm_lab/palette.json";

import { findNode } from "../src/find";
import { toFlow } from "../src/flow";
import { handleTops } from "../src/FmNode";
import { historyKey } from "../src/focus";
import { applyEdit, fitHeight, NODE_HEIGHT, tidy } from "../src/graph";
import { emptyHistory, LIMIT, recorded, redo, undo } from "../src/history";
import { colourOf, iconPath, statusColour, statusVars } from "../src/look";
import { cycleEdges, edgeState } from "../src/paths";
import type { WorkflowDict } from "../src/types";

const APPROVAL: WorkflowDict = {
  id: "pay",
  nodes: {
    draft: { type: "template" }, check: { type: "approval" },
    paid: { type: "template" }, refused: { type: "template" },
  },
  edges: [
    { source: "draft", target: "check" },
    { source: "check", target: "paid", source_handle: "approved" },
    { source: "check", target: "refused", source_handle: "rejected" },
  ],
};

describe("undo history", () => {
  const g = (n: number): WorkflowDict => ({ id: `g${n}`, nodes: {} });

  it("undoes and redoes the graphs sent, a new edit dropping the redo", () => {
    let h = recorded(recorded(emptyHistory(), g(0)), g(1)); // g0 -> g1 -> g2 (current)
    const u1 = undo(h, g(2));
    expect(u1?.graph).toEqual(g(1));
    h = u1!.history;
    const u2 = undo(h, g(1));
    expect(u2?.graph).toEqual(g(0));
    expect(undo(u2!.history, g(0))).toBeNull();
    const r1 = redo(u2!.history, g(0));
    expect(r1?.graph).toEqual(g(1));
    const r2 = redo(r1!.history, g(1));
    expect(r2?.graph).toEqual(g(2));
    expect(redo(r2!.history, g(2))).toBeNull();
    const branched = recorded(u1!.history, g(1)); // an edit after an undo
    expect(branched.future).toEqual([]);
    expect(redo(branched, g(9))).toBeNull();
  });

  it("brings a deleted node back with its edges", () => {
    const before = APPROVAL;
    const after = applyEdit(before, { kind: "delete", nodes: ["check"] });
    expect(after.edges).toEqual([]);
    const out = undo(recorded(emptyHistory(), before), after);
    expect(out?.graph.nodes?.check).toEqual({ type: "approval" });
    expect(out?.graph.edges).toHaveLength(3);
  });

  it("keeps a bounded past", () => {
    let h = emptyHistory();
    for (let i = 0; i < LIMIT + 10; i++) h = recorded(h, g(i));
    expect(h.past).toHaveLength(LIMIT);
    expect(h.past[0]).toEqual(g(10));
  });

  it("reads the keys", () => {
    const key = (init: KeyboardEventInit): KeyboardEvent => ({ altKey: false, shiftKey: false,
      ctrlKey: false, metaKey: false, ...init } as KeyboardEvent);
    expect(historyKey(key({ key: "z", ctrlKey: true }))).toBe("undo");
    expect(historyKey(key({ key: "z", metaKey: true }))).toBe("undo");
    expect(historyKey(key({ key: "Z", ctrlKey: true, shiftKey: true }))).toBe("redo");
    expect(historyKey(key({ key: "y", ctrlKey: true }))).toBe("redo");
    expect(historyKey(key({ key: "z" }))).toBeNull();
  });
});

describe("cycles", () => {
  it("marks exactly the edges on a cycle", () => {
    const wf: WorkflowDict = {
      id: "c",
      nodes: Object.fromEntries("abcdexy".split("").map((n) => [n, { type: "log" }])),
      edges: ["a-b", "b-c", "c-d", "d-b", "d-e", "e-x", "x-y", "y-x", "a-a"].map((s) => {
        const [source, target] = s.split("-");
        return { source, target };
      }),
    };
    expect([...cycleEdges(wf)].sort()).toEqual([1, 2, 3, 6, 7, 8]);
    expect(cycleEdges(APPROVAL).size).toBe(0);
  });

  it("puts fm-edge-cycle on the flow edges", () => {
    const wf = applyEdit(APPROVAL, { kind: "connect", source: "paid", target: "draft" });
    const flow = toFlow({ graph: wf, routes: {}, issues: [], results: {}, pending: [] });
    const cyclic = flow.edges.filter((e) => e.className?.includes("fm-edge-cycle")).map((e) => e.id);
    expect(cyclic).toEqual(["e0", "e1", "e3"]);
    expect(flow.edges.every((e) => typeof e.markerEnd === "object")).toBe(true);  // arrowheads
  });
});

describe("taken edges", () => {
  const [toCheck, toPaid, toRefused] = APPROVAL.edges!;

  it("follow the route a node took", () => {
    const results = {
      draft: { status: "succeeded" as const }, check: { status: "succeeded" as const, taken: ["approved"] },
      paid: { status: "succeeded" as const }, refused: { status: "skipped" as const },
    };
    expect(edgeState(toCheck, results)).toBe("taken");
    expect(edgeState(toPaid, results)).toBe("taken");
    expect(edgeState(toRefused, results)).toBe("not-taken");
    const flow = toFlow({ graph: APPROVAL, routes: {}, issues: [], results, pending: [] });
    expect(flow.edges.map((e) => e.className)).toEqual(
      ["fm-edge-taken", "fm-edge-taken", "fm-edge-dead fm-edge-not-taken"]);
  });

  it("are unknown before the source finishes, not taken after a failure", () => {
    expect(edgeState(toCheck, {})).toBeNull();
    expect(edgeState(toPaid, { check: { status: "suspended" } })).toBeNull();
    expect(edgeState(toPaid, { check: { status: "running" } })).toBeNull();
    expect(edgeState(toCheck, { draft: { status: "failed" } })).toBe("not-taken");
    expect(edgeState(toCheck, { draft: { status: "succeeded" } })).toBeNull(); // target not reached
    expect(edgeState(toCheck, { draft: { status: "cached" }, check: { status: "suspended" } }))
      .toBe("taken");
  });
});

describe("palette", () => {
  it("is the one palette.json of the Python side", () => {
    expect(statusColour("suspended")).toBe(palette.statuses.suspended);
    expect(statusColour("failed")).toBe(palette.statuses.failed);
    expect(statusColour("nonsense")).toBe(palette.statuses.idle);
    expect(colourOf("approval")).toBe(palette.families.human.colour);
    expect(colourOf("third_party")).toBe(palette.other_type);
    expect(statusVars()["--fm-status-suspended"]).toBe(palette.statuses.suspended);
  });

  it("has an SVG icon for every type of every family", () => {
    const icons: Record<string, string> = palette.icons;
    for (const family of Object.values(palette.families)) {
      for (const type of family.types) {
        expect(icons[type], type).toMatch(/^M[\d.\s,MmLlHhVvCcSsQqTtAaZz-]+$/);
      }
    }
    expect(iconPath("third_party")).toBe(palette.icons.other);
  });
});

describe("search, tidy, height, handles", () => {
  const wf: WorkflowDict = { id: "s", nodes: { draft: { type: "template", label: "Draft mail" },
    check: { type: "approval", label: "Approve?" }, checkout: { type: "log" } } };

  it("finds a node by id or label", () => {
    expect(findNode(wf, "check")).toBe("check");
    expect(findNode(wf, "approve?")).toBe("check");
    expect(findNode(wf, "dra")).toBe("draft");
    expect(findNode(wf, "mail")).toBe("draft");
    expect(findNode(wf, "nothing")).toBeNull();
    expect(findNode(wf, "  ")).toBeNull();
  });

  it("tidies every node, stored positions too", () => {
    const placed = applyEdit(APPROVAL, { kind: "move", positions: { paid: { x: 900, y: 900 } } });
    const laid = tidy(placed);
    expect(Object.keys(laid).sort()).toEqual(["check", "draft", "paid", "refused"]);
    expect(laid.paid.x).toBeGreaterThan(laid.check.x);
    expect(laid.paid.y).toBeLessThan(900);
  });

  it("fits the height to the graph, clamped", () => {
    expect(fitHeight({ a: { x: 0, y: 0 } }, 40)).toBe(240);
    expect(fitHeight({ a: { x: 0, y: 0 }, b: { x: 0, y: 300 } }, 40)).toBe(300 + NODE_HEIGHT + 80 + 40);
    expect(fitHeight({ a: { x: 0, y: 0 }, b: { x: 0, y: 5000 } }, 40)).toBe(720);
  });

  it("puts named routes below the node head, one row each", () => {
    expect(handleTops([null])).toEqual(["50%"]);
    expect(handleTops(["approved", "rejected"])).toEqual(["40px", "56px"]);
  });
});
