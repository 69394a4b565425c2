/** The anywidget entry: a React Flow editor of an fm_lab workflow, synced with Python. */
import "@xyflow/react/dist/style.css";
import "./style.css";

import type { RenderProps } from "@anywidget/types";
import {
  applyEdgeChanges, applyNodeChanges, Background, type Connection, Controls, type Edge,
  type EdgeChange, MiniMap, type Node, type NodeChange, ReactFlow, ReactFlowProvider,
  useKeyPress, useNodesInitialized, useReactFlow,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { createRoot } from "react-dom/client";

import { findNode } from "./find";
import { FmNode } from "./FmNode";
import { type FmEdgeData, type FmNodeData, toFlow } from "./flow";
import { historyKey, inTextField, useActive } from "./focus";
import {
  applyEdit, type Edit, fitHeight, freeSpot, freeze, NODE_HEIGHT, NODE_WIDTH, tidy,
} from "./graph";
import { emptyHistory, type History, recorded, redo, undo } from "./history";
import { colourOf, statusVars } from "./look";
import { type Model, type Traits, useDarkTheme, useTrait } from "./model";
import { useEarlierEdits } from "./earlier";
import { connectNotebook } from "./notebook";
import { Panel, sameSelection, type Selection } from "./Panel";
import type { FormHandle } from "./SchemaForm";
import { Toolbar } from "./Toolbar";
import type { PendingItem, WorkflowDict, XY } from "./types";

const NODE_TYPES = { fm: FmNode };
const KEEP = 50;
const MINIMAP_FROM = 15; // nodes: a minimap helps to find your way in graphs this big
const CHROME = 40; // toolbar px, for the fitted height
const REFIT = { padding: 0.1, duration: 150 };

/** Figures the browser tests read: edit -> Python round trips and first render time. */
function record(el: HTMLElement, key: "roundtrip" | "render", ms: number): void {
  const list = JSON.parse(el.dataset[key] ?? "[]") as number[];
  list.push(Math.round(ms * 10) / 10);
  el.dataset[key] = JSON.stringify(list.slice(-KEEP));
}

/** Fits the view once every node is measured (the output area may have had no size when
 * React Flow mounted) and records the time to that first full render. */
function FirstRender(props: { el: HTMLElement; started: number }): null {
  const ready = useNodesInitialized();
  const { fitView } = useReactFlow();
  const done = useRef(false);
  useEffect(() => {
    if (ready && !done.current) {
      done.current = true;
      void fitView({ padding: 0.1 });
      requestAnimationFrame(() => record(props.el, "render", performance.now() - props.started));
    }
  }, [ready, props, fitView]);
  return null;
}

function keepMeasured(prev: Node<FmNodeData>[], next: Node<FmNodeData>[]): Node<FmNodeData>[] {
  const old = new Map(prev.map((n) => [n.id, n]));
  return next.map((n) => {
    const p = old.get(n.id);
    return p ? { ...n, measured: p.measured, selected: p.selected } : n;
  });
}

/** Sends graphs to Python and keeps the undo history of what was sent. A graph set from
 * Python (not one this canvas sent) starts a fresh history. */
function useGraphSender(model: Model, el: HTMLElement) {
  const sent = useRef(new Map<number, number>());
  const lastSent = useRef("");
  const [history, setHistory] = useState<History>(emptyHistory);

  useEffect(() => {
    const onSynced = (): void => {
      const seq = model.get("synced");
      const t0 = sent.current.get(seq);
      if (t0 !== undefined) {
        record(el, "roundtrip", performance.now() - t0);
        sent.current.delete(seq);
      }
    };
    const onGraph = (): void => {
      if (JSON.stringify(model.get("graph")) !== lastSent.current) setHistory(emptyHistory());
    };
    model.on("change:synced", onSynced);
    model.on("change:graph", onGraph);
    return () => {
      model.off("change:synced", onSynced);
      model.off("change:graph", onGraph);
    };
  }, [model, el]);

  const push = useCallback((next: WorkflowDict): void => {
    const seq = (model.get("edit_seq") ?? 0) + 1;
    sent.current.set(seq, performance.now());
    lastSent.current = JSON.stringify(next);
    model.set("graph", next);
    model.set("edit_seq", seq);
    model.save_changes();
  }, [model]);

  const send = useCallback((next: WorkflowDict): void => {
    const before = model.get("graph");
    if (next === before) return;
    setHistory((h) => recorded(h, before));
    push(next);
  }, [model, push]);

  const step = useCallback((which: "undo" | "redo"): void => {
    const out = (which === "undo" ? undo : redo)(history, model.get("graph"));
    if (out === null) return;
    setHistory(out.history);
    push(out.graph);
  }, [history, model, push]);

  return { send, step, history };
}

function Editor(props: { model: Model; el: HTMLElement; started: number }): JSX.Element {
  const { model, el } = props;
  const graph = useTrait(model, "graph");
  const types = useTrait(model, "node_types");
  const routes = useTrait(model, "handles");
  const issues = useTrait(model, "issues");
  const results = useTrait(model, "results");
  const pending = useTrait(model, "pending");
  const runInfo = useTrait(model, "run_state");
  const height = useTrait(model, "height");
  const cellLine = useTrait(model, "cell_line");
  const unsaved = useTrait(model, "unsaved");
  const dark = useDarkTheme();
  const flow = useMemo(
    () => toFlow({ graph, routes, issues, results, pending }),
    [graph, routes, issues, results, pending],
  );
  const [nodes, setNodes] = useState<Node<FmNodeData>[]>(flow.nodes);
  const [edges, setEdges] = useState<Edge<FmEdgeData>[]>(flow.edges);
  useEffect(() => setNodes((prev) => keepMeasured(prev, flow.nodes)), [flow.nodes]);
  useEffect(() => setEdges(flow.edges), [flow.edges]);
  const positions = useRef<Record<string, XY>>(flow.positions);
  positions.current = flow.positions;
  const [autoHeight, setAutoHeight] = useState(() => fitHeight(flow.positions, CHROME));
  const [selection, setSelection] = useState<Selection>(null);
  const [wanted, setWanted] = useState<{ next: Selection } | null>(null);
  const guard = useRef<FormHandle>(null);
  const [notice, setNotice] = useState<string>("");
  const root = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLDivElement>(null);
  const active = useActive(root);
  const metaHeld = useKeyPress("Meta");
  const rf = useReactFlow();
  const { send, step, history } = useGraphSender(model, el);
  const earlier = useEarlierEdits(model, graph, unsaved, cellLine, send);

  const commit = useCallback((edit: Edit): boolean => {
    let next;
    try {
      next = freeze(applyEdit(model.get("graph"), edit), positions.current);
    } catch (err) {
      setNotice(err instanceof Error ? err.message : String(err));
      return false;
    }
    setNotice("");
    send(next);
    return true;
  }, [model, send]);

  /** Change the selection; unapplied panel edits are applied first, or (when they cannot
   * be) the panel stays with an Apply / Discard choice. */
  const select = useCallback((next: Selection): void => {
    if (sameSelection(next, selection)) return;
    const form = guard.current;
    if (form !== null && form.dirty() && !form.apply()) {
      setWanted({ next });
      return;
    }
    setWanted(null);
    setSelection(next);
  }, [selection]);
  const onUnapplied = (choice: "apply" | "discard"): void => {
    if (wanted === null) return;
    if (choice === "apply" && guard.current !== null && !guard.current.apply()) return;
    setWanted(null);
    setSelection(wanted.next);
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const which = historyKey(e);
      if (which === null || !active || inTextField(e)) return;
      e.preventDefault();
      e.stopPropagation();
      step(which);
    };
    document.addEventListener("keydown", onKey, true);
    return () => document.removeEventListener("keydown", onKey, true);
  }, [active, step]);

  const panelOpen = selection !== null;
  const firstPanel = useRef(true);
  useEffect(() => {  // the canvas narrows or widens with the panel: keep the graph in view
    if (firstPanel.current) {
      firstPanel.current = false;
      return;
    }
    const frame = requestAnimationFrame(() => void rf.fitView(REFIT));
    return () => cancelAnimationFrame(frame);
  }, [panelOpen, rf]);

  const onNodesChange = useCallback((changes: NodeChange<Node<FmNodeData>>[]) => {
    setNodes((ns) => applyNodeChanges(changes.filter((c) => c.type !== "remove"), ns));
  }, []);
  const onEdgesChange = useCallback((changes: EdgeChange<Edge<FmEdgeData>>[]) => {
    setEdges((es) => applyEdgeChanges(changes.filter((c) => c.type !== "remove"), es));
  }, []);
  const onNodeDragStop = useCallback((_: unknown, __: Node, dragged: Node[]) => {
    const moved: Record<string, XY> = {};
    for (const n of dragged) moved[n.id] = n.position;
    commit({ kind: "move", positions: moved });
  }, [commit]);
  const onConnect = useCallback((c: Connection) => {
    commit({ kind: "connect", source: c.source, target: c.target, source_handle: c.sourceHandle });
  }, [commit]);
  const onDelete = useCallback((args: { nodes: Node[]; edges: Edge[] }) => {
    const gone = new Set(args.nodes.map((n) => n.id));
    const indexes = args.edges
      .filter((e) => !gone.has(e.source) && !gone.has(e.target))
      .map((e) => (e.data as FmEdgeData).index);
    commit({ kind: "delete", nodes: [...gone], edges: indexes });
    setSelection(null);
  }, [commit]);

  const addNode = (type: string): void => {
    if (!type) return;
    const box = canvas.current?.getBoundingClientRect();  // the middle of the visible canvas
    const centre = box
      ? rf.screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 2 })
      : { x: 0, y: 0 };
    commit({ kind: "add", type, position: freeSpot(positions.current, centre) });
  };
  const tidyUp = (): void => {
    const laid = tidy(model.get("graph"));
    if (commit({ kind: "move", positions: laid })) {
      setAutoHeight(fitHeight(laid, CHROME));
      setTimeout(() => void rf.fitView(REFIT), 50);
    }
  };
  const find = (text: string): void => {
    const id = findNode(model.get("graph"), text);
    if (id === null) {
      setNotice(`no node matches "${text}"`);
      return;
    }
    setNotice("");
    setNodes((ns) => ns.map((n) => ({ ...n, selected: n.id === id })));
    select({ kind: "node", id });
    const p = positions.current[id] ?? { x: 0, y: 0 };
    setTimeout(() => void rf.setCenter(p.x + NODE_WIDTH / 2, p.y + NODE_HEIGHT / 2,
      { zoom: Math.max(rf.getZoom(), 1), duration: 200 }), 200);  // after the panel's refit
  };
  const run = (inputs: Record<string, unknown>): void => {
    model.send({ kind: "run", inputs });
    setSelection(null);
  };
  const startRun = (): void => {
    const props = (graph.inputs?.properties ?? {}) as Record<string, unknown>;
    if (Object.keys(props).length > 0) select({ kind: "run" });
    else run({});
  };
  const resume = (item: PendingItem, data: unknown): void => {
    model.send({ kind: "resume", run_id: item.run_id, path_id: item.path_id, data });
  };
  const deleteSelection = (s: Selection): void => {
    if (s?.kind === "node") commit({ kind: "delete", nodes: [s.id] });
    if (s?.kind === "edge") commit({ kind: "delete", edges: [s.index] });
    setWanted(null);
    setSelection(null);
  };
  const general = issues.filter((i) => i.node === null && i.edge === null);
  const zoomKeys = active || metaHeld;

  return (
    <div className="fm-root" ref={root}
      style={{ ...statusVars(), height: `${height > 0 ? height : autoHeight}px` }}>
      <Toolbar types={types} graph={graph} issues={issues} runInfo={runInfo} notice={notice}
        canUndo={history.past.length > 0} canRedo={history.future.length > 0}
        onAdd={addNode} onRun={startRun} onUndo={() => step("undo")} onRedo={() => step("redo")}
        onTidy={tidyUp} onFind={find} cellLine={cellLine} unsaved={unsaved}
        onSave={() => model.send({ kind: "save" })} />
      {earlier.offered !== null && (
        <div className="fm-restore" data-testid="fm-restore-bar">
          This cell's canvas had edits that were never saved into the cell (
          {Object.keys(earlier.offered.nodes ?? {}).length} nodes).
          <button type="button" className="fm-button fm-primary" data-testid="fm-restore"
            onClick={earlier.restore}>Restore them</button>
          <button type="button" className="fm-button" data-testid="fm-restore-discard"
            onClick={earlier.discard}>Discard</button>
        </div>
      )}
      {general.length > 0 && (
        <ul className="fm-issues fm-general" data-testid="fm-general-issues">
          {general.map((i) => <li key={i.location + i.message}><code>{i.location}</code> {i.message}</li>)}
        </ul>
      )}
      <div className="fm-body">
        <div className={active ? "fm-canvas fm-active" : "fm-canvas"} ref={canvas} tabIndex={-1}
          onPointerDown={() => {  // keys typed next belong to the canvas, not the notebook
            if (!el.contains(document.activeElement)) canvas.current?.focus({ preventScroll: true });
          }}>
          <ReactFlow nodes={nodes} edges={edges} nodeTypes={NODE_TYPES}
            onNodesChange={onNodesChange} onEdgesChange={onEdgesChange}
            onNodeDragStop={onNodeDragStop} onConnect={onConnect} onDelete={onDelete}
            onNodeClick={(_, n) => select({ kind: "node", id: n.id })}
            onEdgeClick={(_, e) => select({ kind: "edge", index: (e.data as FmEdgeData).index })}
            onPaneClick={() => select(null)}
            preventScrolling={zoomKeys} zoomOnScroll={zoomKeys} zoomActivationKeyCode={["Meta"]}
            deleteKeyCode={["Backspace", "Delete"]} colorMode={dark ? "dark" : "light"}
            minZoom={0.05} fitView proOptions={{ hideAttribution: true }}>
            <Background />
            {nodes.length >= MINIMAP_FROM && (  // on small graphs it would only cover nodes
              <MiniMap pannable zoomable={active} style={{ width: 140, height: 90 }}
                nodeColor={(n) => colourOf((n.data as FmNodeData).spec.type)} />
            )}
            <Controls />
            <FirstRender el={el} started={props.started} />
          </ReactFlow>
        </div>
        <Panel selection={selection} graph={graph} types={types} issues={issues}
          results={results} pending={pending} guard={guard} unapplied={wanted !== null}
          onUnapplied={onUnapplied}
          onConfig={(node, config, label) => commit({ kind: "config", node, config, label })}
          onCondition={(edge, condition) => commit({ kind: "condition", edge, condition })}
          onDelete={deleteSelection} onRun={run} onResume={resume}
          onClose={() => select(null)} />
      </div>
    </div>
  );
}

function render({ model, el }: RenderProps<Traits>): () => void {
  const started = performance.now();
  el.classList.add("fm-lab-graph");
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  const root = createRoot(el);
  root.render(
    <ReactFlowProvider>
      <Editor model={model} el={el} started={started} />
    </ReactFlowProvider>,
  );
  const disconnect = connectNotebook(model);
  return () => {
    disconnect();
    root.unmount();
  };
}

export default { render };
