/** Reading and writing the widget model (traits synced with Python). */
import type { AnyModel } from "@anywidget/types";
import { useEffect, useState } from "react";

import type { Snapshot } from "./notebook";
import type { Issue, NodeResult, NodeTypeInfo, PendingItem, RunInfo, WorkflowDict } from "./types";

export interface Traits {
  graph: WorkflowDict;
  edit_seq: number;
  synced: number;
  node_types: NodeTypeInfo[];
  handles: Record<string, string[] | null>;
  issues: Issue[];
  results: Record<string, NodeResult>;
  pending: PendingItem[];
  run_state: RunInfo;
  height: number;
  snapshot: Snapshot;
  cell_line: string;
  unsaved: boolean;
  [key: string]: unknown;
}

export type Model = AnyModel<Traits>;

/** The current value of a trait, re-rendering when it changes. */
export function useTrait<K extends keyof Traits & string>(model: Model, name: K): Traits[K] {
  const [value, setValue] = useState(() => model.get(name));
  useEffect(() => {
    const update = (): void => setValue(model.get(name));
    model.on(`change:${name}`, update);
    update();
    return () => model.off(`change:${name}`, update);
  }, [model, name]);
  return value;
}

/** JupyterLab's dark themes set `data-jp-theme-light="false"` on the body. */
export function useDarkTheme(): boolean {
  const read = (): boolean => document.body.dataset.jpThemeLight === "false";
  const [dark, setDark] = useState(read);
  useEffect(() => {
    const observer = new MutationObserver(() => setDark(read()));
    observer.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light"] });
    return () => observer.disconnect();
  }, []);
  return dark;
}
