/** The canvas and the notebook it lives in (JupyterLab and Notebook 7, through the widget
 * manager's document context): write the graph back into its `%%flow` cell, keep the static
 * picture in the notebook's widget metadata (for reopening) and in the saved output's HTML
 * (for GitHub and nbviewer).
 * Elsewhere (VS Code, Colab, a page without a notebook) these do nothing. */

const WIDGET_VIEW = "application/vnd.jupyter.widget-view+json";
const WIDGET_STATE = "application/vnd.jupyter.widget-state+json";
const STATIC_MARKER = "fm_lab.static";

type Json = Record<string, unknown>;

interface OutputModel {
  data: Json;
}
interface OutputList {
  length: number;
  get(index: number): OutputModel;
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

const PICTURES = Symbol.for("fm_lab.pictures");

type Saving = NotebookModel & { toJSON(): Json; [PICTURES]?: Map<string, Snapshot> };

/** The notebook file's form of `json` with each canvas output's `text/html` and
 * `text/plain` replaced by its latest picture (what GitHub and nbviewer show). Only the
 * outputs changed are copied; `json` is not modified. */
export function withPictures(json: Json, pictures: Map<string, Snapshot>): Json {
  const cells = json.cells as Json[] | undefined;
  if (!Array.isArray(cells) || pictures.size === 0) return json;
  const pictured = (output: Json): Json => {
    const data = output.data as Json | undefined;
    const view = data?.[WIDGET_VIEW] as { model_id?: string } | undefined;
    const snap = view?.model_id ? pictures.get(view.model_id) : undefined;
    if (!data || snap?.html === undefined) return output;
    return { ...output, data: { ...data, "text/html": snap.html, "text/plain": snap.text ?? "" } };
  };
  return {
    ...json,
    cells: cells.map((cell) => {
      const outputs = cell.outputs as Json[] | undefined;
      if (!Array.isArray(outputs)) return cell;
      const next = outputs.map(pictured);
      return next.some((o, i) => o !== outputs[i]) ? { ...cell, outputs: next } : cell;
    }),
  };
}

/** Save the latest picture of canvas `modelId` with the notebook. The notebook's `toJSON`
 * (what JupyterLab writes to the file) is wrapped once to put each canvas's picture in its
 * output, so the live output is never re-rendered; a failure there saves the notebook as it
 * is. Returns false where there is no notebook. */
export function savePicture(nb: NotebookModel | null, modelId: string, snapshot: Snapshot
): boolean {
  const saving = nb as Saving | null;
  if (saving === null || typeof saving.toJSON !== "function") return false;
  let pictures = saving[PICTURES];
  if (pictures === undefined) {
    const registry = new Map<string, Snapshot>();
    pictures = registry;
    saving[PICTURES] = registry;
    const original = saving.toJSON.bind(saving);
    saving.toJSON = (): Json => {
      const json = original();
      try {
        return withPictures(json, registry);
      } catch {
        return json;
      }
    };
  }
  pictures.set(modelId, snapshot);
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

/** Wire a canvas view to its notebook: `write_cell` messages, the static picture in the
 * metadata, and the output's HTML after each run. Returns the disconnect function. */
export function connectNotebook(model: SnapshotModel): () => void {
  const nb = notebookOf(model);
  const onSnapshot = (): void => {
    const snap = model.get("snapshot");
    if (!snap?.model_id || !snap.model_state) return;
    keepStaticState(nb, snap.model_id, snap.model_state);
    savePicture(nb, snap.model_id, snap);
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

const UNSAVED_KEY = "fm_lab";

/** Remember in the canvas's cell (its metadata, saved with the notebook) the graph the canvas
 * holds but the cell's text does not, so it survives a kernel restart; `null` forgets it. */
export function rememberUnsaved(nb: NotebookModel | null, modelId: string, graph: Json | null
): void {
  const found = nb === null ? null : findOutput(nb, modelId);
  const cell = found?.cell as (CellModel & CellMetadata) | undefined;
  if (!cell || typeof cell.getMetadata !== "function") return;
  const before = cell.getMetadata(UNSAVED_KEY) as { unsaved_graph?: Json } | undefined;
  if (graph === null) {
    if (before?.unsaved_graph !== undefined) cell.deleteMetadata(UNSAVED_KEY);
  } else if (JSON.stringify(before?.unsaved_graph) !== JSON.stringify(graph)) {
    cell.setMetadata(UNSAVED_KEY, { unsaved_graph: graph });
  }
}

/** The unsaved graph an earlier canvas of this cell left in its metadata, if any. */
export function rememberedUnsaved(nb: NotebookModel | null, modelId: string): Json | null {
  const found = nb === null ? null : findOutput(nb, modelId);
  const cell = found?.cell as (CellModel & CellMetadata) | undefined;
  if (!cell || typeof cell.getMetadata !== "function") return null;
  const kept = cell.getMetadata(UNSAVED_KEY) as { unsaved_graph?: Json } | undefined;
  return kept?.unsaved_graph ?? null;
}

interface CellMetadata {
  getMetadata(key: string): unknown;
  setMetadata(key: string, value: unknown): void;
  deleteMetadata(key: string): void;
}
