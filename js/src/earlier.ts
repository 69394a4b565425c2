/** Canvas edits that outlive the kernel: while a `%%flow` canvas holds edits its cell's text
 * does not, the graph is kept in the cell's metadata; a canvas of that cell made later (after
 * a restart, or in a reopened notebook) offers to restore it. */
import { useEffect, useState } from "react";

import { notebookOf, rememberedUnsaved, rememberUnsaved } from "./notebook";
import type { Model } from "./model";
import type { WorkflowDict } from "./types";

export interface Earlier {
  /** The graph an earlier canvas of this cell left unsaved (null: nothing to offer). */
  offered: WorkflowDict | null;
  restore: () => void;
  discard: () => void;
}

export function useEarlierEdits(model: Model, graph: WorkflowDict, unsaved: boolean,
  cellLine: string, send: (graph: WorkflowDict) => void): Earlier {
  const id = model.get("snapshot")?.model_id ?? "";
  const [offered, setOffered] = useState<WorkflowDict | null>(() => {
    if (!cellLine || !id) return null;
    const kept = rememberedUnsaved(notebookOf(model), id) as WorkflowDict | null;
    return kept !== null && JSON.stringify(kept) !== JSON.stringify(graph) ? kept : null;
  });
  useEffect(() => {  // keep the cell's memory in step, unless an offer waits for an answer
    if (!cellLine || !id || offered !== null) return;
    rememberUnsaved(notebookOf(model), id, unsaved ? graph : null);
  }, [model, id, cellLine, graph, unsaved, offered]);
  return {
    offered,
    restore: () => {
      if (offered !== null) send(offered);
      setOffered(null);
    },
    discard: () => setOffered(null),
  };
}
