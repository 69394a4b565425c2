/** The canvas and the notebook it lives in (JupyterLab and Notebook 7, through the widget
 * manager's document context): write the graph back into its `%%flow` cell, keep the static
 * picture in the saved notebook, and refresh the output's HTML for GitHub and nbviewer.
 * Elsewhere (VS Code, Colab, a page without a notebook) these do nothing. */

const WIDGET_VIEW = "application/vnd.jupyter.widget-view+json";
const WIDGET_STATE = "application/vnd.jupyter.widget-state+json";
const STATIC_MARKER = "fm_lab.static";

type Json = Record<string, unknown>;

interface OutputModel {
  data: Json;
  metadata?: Json;
  toJSON(): Json;
}
interface OutputList {
  length: number;
  get(index: number): OutputModel;
  set(index: number, value: Json): void;
}
interface CellModel {
  type: string;
  outputs?: OutputList;
  sharedModel: { setSource(text: string): void; getSource(): string };
}
interface NotebookModel {
  cells: { length: number; get(index: number): CellModel };
  getMetadata(key: string): unknown;
  setMetadata(key: string, value: unknown): void;
}

export interface Snapshot {
  html?: string;
  text?: string;
  model_id?: string;
  run_key?: string;
  model_state?: Json;
}

/** The notebook holding the canvas of `model`, if the host exposes one. */
export function notebookOf(model: unknown): NotebookModel | null {
  const manager = (model as { widget_manager?: { context?: { model?: unknown } } })
    .widget_manager;
  const nb = manager?.context?.model as NotebookModel | undefined;
  return nb && nb.cells && typeof nb.getMetadata === "function" ? nb : null;
}

function viewId(output: OutputModel): string | null {
  const view = output.data[WIDGET_VIEW] as { model_id?: string } | undefined;
  return view?.model_id ?? null;
}

/** The cell (and output index) that shows the widget `modelId`. */
export function findOutput(nb: NotebookModel, modelId: string
): { cell: CellModel; index: number } | null {
  for (let i = 0; i < nb.cells.length; i++) {
    const cell = nb.cells.get(i);
    const outputs = cell.outputs;
    if (!outputs) continue;
    for (let j = 0; j < outputs.length; j++) {
      if (viewId(outputs.get(j)) === modelId) return { cell, index: j };
    }
  }
  return null;
}

/** Replace the source of the cell showing `modelId` by `text`; an error message or null. */
export function writeCell(nb: NotebookModel | null, modelId: string, text: string): string | null {
  if (nb === null) return "the canvas is not in a JupyterLab or Notebook 7 notebook";
  const found = findOutput(nb, modelId);
  if (found === null) return "the canvas's cell is no longer in the notebook";
  found.cell.sharedModel.setSource(text);
  return null;
}

function shownIds(nb: NotebookModel): Set<string> {
  const ids = new Set<string>();
  for (let i = 0; i < nb.cells.length; i++) {
    const outputs = nb.cells.get(i).outputs;
    if (!outputs) continue;
    for (let j = 0; j < outputs.length; j++) {
      const id = viewId(outputs.get(j));
      if (id) ids.add(id);
    }
  }
  return ids;
}

/** Keep the static picture of canvas `modelId` in the notebook's widget metadata (so the
 * output renders without a kernel), dropping pictures of canvases no longer shown. Returns
 * true when the metadata changed. */
export function keepStaticState(nb: NotebookModel | null, modelId: string, state: Json): boolean {
  if (nb === null) return false;
  const widgets = (nb.getMetadata("widgets") ?? {}) as Json;
  const saved = (widgets[WIDGET_STATE] ?? {}) as { state?: Record<string, Json> };
  const before = saved.state ?? {};
  const shown = shownIds(nb);
  const after: Record<string, Json> = {};
  for (const [id, entry] of Object.entries(before)) {
    const marker = (entry.state as Json | undefined)?._anywidget_id;
    if (marker !== STATIC_MARKER || (shown.has(id) && id !== modelId)) after[id] = entry;
  }
  if (shown.has(modelId)) after[modelId] = state;
  if (JSON.stringify(after) === JSON.stringify(before)) return false;
  nb.setMetadata("widgets", {
    ...widgets,
    [WIDGET_STATE]: { version_major: 2, version_minor: 0, ...saved, state: after },
  });
  return true;
}

/** Put the latest static picture into the canvas's output bundle (what GitHub and nbviewer
 * show). The output re-renders, so call it when a run ends, not on every edit. */
export function refreshOutput(nb: NotebookModel | null, modelId: string, snapshot: Snapshot
): boolean {
  if (nb === null || snapshot.html === undefined) return false;
  const found = findOutput(nb, modelId);
  if (found === null || !found.cell.outputs) return false;
  const output = found.cell.outputs.get(found.index);
  if (output.data["text/html"] === snapshot.html) return false;
  const json = output.toJSON();
  found.cell.outputs.set(found.index, {
    ...json,
    data: { ...output.data, "text/html": snapshot.html, "text/plain": snapshot.text ?? "" },
  });
  return true;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Handler = (...args: any[]) => void;

interface SnapshotModel {
  get(key: "snapshot"): Snapshot;
  on(event: string, callback: Handler): void;
  off(event: string, callback: Handler): void;
  send(content: unknown): void;
}

const FINAL = /:(succeeded|failed|suspended|cancelled)$/;

/** Wire a canvas view to its notebook: `write_cell` messages, the static picture in the
 * metadata, and the output's HTML after each run. Returns the disconnect function. */
export function connectNotebook(model: SnapshotModel): () => void {
  const nb = notebookOf(model);
  const mounted = model.get("snapshot")?.run_key ?? "";
  const onSnapshot = (): void => {
    const snap = model.get("snapshot");
    if (!snap?.model_id || !snap.model_state) return;
    keepStaticState(nb, snap.model_id, snap.model_state);
    if (snap.run_key && snap.run_key !== mounted && FINAL.test(snap.run_key)) {
      refreshOutput(nb, snap.model_id, snap);
    }
  };
  const onMessage = (msg: { kind?: string; text?: string }): void => {
    if (msg?.kind !== "write_cell" || typeof msg.text !== "string") return;
    const id = model.get("snapshot")?.model_id ?? "";
    const error = writeCell(nb, id, msg.text);
    model.send({ kind: "cell_written", ok: error === null, error });
  };
  model.on("change:snapshot", onSnapshot);
  model.on("msg:custom", onMessage);
  onSnapshot();
  return () => {
    model.off("change:snapshot", onSnapshot);
    model.off("msg:custom", onMessage);
  };
}
