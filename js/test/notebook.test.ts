import { describe, expect, it } from "vitest";

import {
  keepStaticState, rememberedUnsaved, rememberUnsaved, savePicture, withPictures, writeCell,
} from "../src/notebook";

const VIEW = "application/vnd.jupyter.widget-view+json";
const STATE = "application/vnd.jupyter.widget-state+json";

function output(id: string): { data: Record<string, unknown> } {
  return { data: { [VIEW]: { model_id: id }, "text/plain": "old" } };
}

/** A notebook model with the parts the canvas uses (cells, outputs, metadata, toJSON). */
function notebook(ids: string[]) {
  const meta = new Map<string, unknown>();
  const sources = ids.map(() => "");
  const cells = ids.map((id, i) => ({
    type: "code",
    metadata: new Map<string, unknown>(),
    getMetadata(k: string) { return this.metadata.get(k); },
    setMetadata(k: string, v: unknown) { this.metadata.set(k, v); },
    deleteMetadata(k: string) { this.metadata.delete(k); },
    outputs: { length: 1, get: () => output(id) },
    sharedModel: { setSource: (t: string) => { sources[i] = t; }, getSource: () => sources[i] },
  }));
  return {
    sources,
    meta,
    cells: { length: cells.length, get: (i: number) => cells[i] },
    getMetadata: (k: string) => meta.get(k),
    setMetadata: (k: string, v: unknown) => { meta.set(k, v); },
    toJSON: () => ({ cells: ids.map((id) => ({ outputs: [output(id)] })) }),
  };
}

describe("the canvas and its notebook", () => {
  it("writes the cell that shows the canvas, and says when there is none", () => {
    const nb = notebook(["m1", "m2"]);
    expect(writeCell(nb, "m2", "%%flow x\nid: x")).toBeNull();
    expect(nb.sources).toEqual(["", "%%flow x\nid: x"]);
    expect(writeCell(nb, "gone", "x")).toMatch(/no longer in the notebook/);
    expect(writeCell(null, "m1", "x")).toMatch(/not in a JupyterLab/);
  });

  it("keeps one static state per shown canvas and drops pictures of canvases gone", () => {
    const nb = notebook(["m1"]);
    nb.setMetadata("widgets", { [STATE]: { version_major: 2, version_minor: 0, state: {
      old: { state: { _anywidget_id: "fm_lab.static" } },
      other: { state: { _anywidget_id: "someone.else" } },
    } } });
    const mine = { model_name: "AnyModel", state: { _anywidget_id: "fm_lab.static", static_html: "<svg/>" } };
    expect(keepStaticState(nb, "m1", mine)).toBe(true);
    const state = (nb.meta.get("widgets") as Record<string, { state: Record<string, unknown> }>)[STATE].state;
    expect(Object.keys(state).sort()).toEqual(["m1", "other"]);
    expect(keepStaticState(nb, "m1", mine)).toBe(false); // unchanged: the notebook stays clean
  });

  it("saves each canvas output with its latest picture, without touching the live JSON", () => {
    const nb = notebook(["m1", "m2"]);
    expect(savePicture(nb, "m1", { html: "<svg id=a/>", text: "Workflow a" })).toBe(true);
    savePicture(nb, "m1", { html: "<svg id=b/>", text: "Workflow b" });
    const saved = nb.toJSON() as { cells: { outputs: { data: Record<string, unknown> }[] }[] };
    expect(saved.cells[0].outputs[0].data["text/html"]).toBe("<svg id=b/>");
    expect(saved.cells[0].outputs[0].data["text/plain"]).toBe("Workflow b");
    expect(saved.cells[1].outputs[0].data["text/html"]).toBeUndefined();
    const json = { cells: [{ outputs: [output("m1")] }] };
    const copy = JSON.stringify(json);
    withPictures(json, new Map([["m1", { html: "x" }]]));
    expect(JSON.stringify(json)).toBe(copy);
  });
});

describe("edits that outlive the kernel", () => {
  it("are kept in the canvas's cell until saved, and read back by a later canvas", () => {
    const nb = notebook(["m1", "m2"]);
    const graph = { id: "x", nodes: { a: { type: "log" } } };
    rememberUnsaved(nb, "m2", graph);
    expect(rememberedUnsaved(nb, "m2")).toEqual(graph);
    expect(rememberedUnsaved(nb, "m1")).toBeNull();
    rememberUnsaved(nb, "m2", null);
    expect(rememberedUnsaved(nb, "m2")).toBeNull();
    rememberUnsaved(null, "m2", graph); // no notebook: nothing happens
  });
});
