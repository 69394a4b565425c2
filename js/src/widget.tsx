/** The anywidget entry: a React Flow editor of an fm_lab workflow, synced with Python. */
import "@xyflow/react/dist/style.css";
import "./style.css";

import type { RenderProps } from "@anywidget/types";
import {
  applyEdgeChanges, applyNodeChanges, Background, type Connection, Controls, type Edge,
  type EdgeChange, MiniMap, type Node, type NodeChange, ReactFlow, ReactFlowProvider,
  useNodesInitialized, useReactFlow,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { createRoot } from "react-dom/client";

import { FmNode } from "./FmNode";
import { type FmEdgeData, type FmNodeData, toFlow } from "./flow";
import { applyEdit, type Edit, freeSpot, freeze } from "./graph";
import { colourOf } from "./look";
import { type Model, type Traits, useDarkTheme, useTrait } from "./model";
import { connectNotebook } from "./notebook";
import { Panel, type Selection } from "./Panel";
import type { PendingItem, XY } from "./types";

const NODE_TYPES = { fm: FmNode };
const KEEP = 50;

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
  const [selection, setSelection] = useState<Selection>(null);
  const [notice, setNotice] = useState<string>("");
  const [paletteType, setPaletteType] = useState<string>("");
  const sent = useRef(new Map<number, number>());
  const wrapper = useRef<HTMLDivElement>(null);
  const rf = useReactFlow();

  useEffect(() => {
    const onSynced = (): void => {
      const seq = model.get("synced");
      const t0 = sent.current.get(seq);
      if (t0 !== undefined) {
        record(el, "roundtrip", performance.now() - t0);
        sent.current.delete(seq);
      }
    };
    model.on("change:synced", onSynced);
    return () => model.off("change:synced", onSynced);
  }, [model, el]);

  const commit = useCallback((edit: Edit): void => {
    let next;
    try {
      next = freeze(applyEdit(model.get("graph"), edit), positions.current);
    } catch (err) {
      setNotice(err instanceof Error ? err.message : String(err));
      return;
    }
    setNotice("");
    const seq = (model.get("edit_seq") ?? 0) + 1;
    sent.current.set(seq, performance.now());
    model.set("graph", next);
    model.set("edit_seq", seq);
    model.save_changes();
  }, [model]);

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

  const addNode = (): void => {
    const type = paletteType || types[0]?.name;
    if (!type) return;
    const box = wrapper.current?.getBoundingClientRect();
    const centre = box
      ? rf.screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 2 })
      : { x: 0, y: 0 };
    commit({ kind: "add", type, position: freeSpot(positions.current, centre) });
  };
  const run = (inputs: Record<string, unknown>): void => {
    model.send({ kind: "run", inputs });
    setSelection(null);
  };
  const startRun = (): void => {
    const props = (graph.inputs?.properties ?? {}) as Record<string, unknown>;
    if (Object.keys(props).length > 0) setSelection({ kind: "run" });
    else run({});
  };
  const resume = (item: PendingItem, data: Record<string, unknown>): void => {
    model.send({ kind: "resume", run_id: item.run_id, path_id: item.path_id, data });
  };
  const deleteSelection = (s: Selection): void => {
    if (s?.kind === "node") commit({ kind: "delete", nodes: [s.id] });
    if (s?.kind === "edge") commit({ kind: "delete", edges: [s.index] });
    setSelection(null);
  };
  const general = issues.filter((i) => i.node === null && i.edge === null);
  const status = runInfo.status ? `run ${runInfo.run_id ?? ""}: ${runInfo.status}` : "";

  return (
    <div className="fm-root" ref={wrapper} style={{ height: `${height}px` }}>
      <div className="fm-toolbar">
        <select aria-label="node type" data-testid="fm-palette" value={paletteType}
          onChange={(e) => setPaletteType(e.target.value)}>
          {types.map((t) => (
            <option key={t.name} value={t.name} title={t.description}
              style={{ color: colourOf(t.name) }}>{t.name}</option>
          ))}
        </select>
        <button type="button" className="fm-button" data-testid="fm-add" onClick={addNode}>
          + Add
        </button>
        <button type="button" className="fm-button fm-primary" data-testid="fm-run"
          onClick={startRun}>▶ Run</button>
        <span className="fm-run-status" data-testid="fm-run-status"
          data-status={runInfo.status ?? ""}>{status}</span>
        {runInfo.message && <span className="fm-error" data-testid="fm-message">{runInfo.message}</span>}
        {notice && <span className="fm-error">{notice}</span>}
        <span className={issues.length ? "fm-issue-count fm-error" : "fm-issue-count"}
          data-testid="fm-issue-count">
          {issues.length ? `${issues.length} issue(s)` : "valid"}
        </span>
      </div>
      {general.length > 0 && (
        <ul className="fm-issues fm-general">
          {general.map((i) => <li key={i.location + i.message}><code>{i.location}</code> {i.message}</li>)}
        </ul>
      )}
      <div className="fm-body">
        <div className="fm-canvas">
          <ReactFlow nodes={nodes} edges={edges} nodeTypes={NODE_TYPES}
            onNodesChange={onNodesChange} onEdgesChange={onEdgesChange}
            onNodeDragStop={onNodeDragStop} onConnect={onConnect} onDelete={onDelete}
            onNodeClick={(_, n) => setSelection({ kind: "node", id: n.id })}
            onEdgeClick={(_, e) => setSelection({ kind: "edge", index: (e.data as FmEdgeData).index })}
            onPaneClick={() => setSelection(null)}
            deleteKeyCode={["Backspace", "Delete"]} colorMode={dark ? "dark" : "light"}
            minZoom={0.05} fitView proOptions={{ hideAttribution: true }}>
            <Background />
            <MiniMap pannable zoomable style={{ width: 140, height: 90 }} nodeColor={(n) => colourOf((n.data as FmNodeData).spec.type)} />
            <Controls />
            <FirstRender el={el} started={props.started} />
          </ReactFlow>
        </div>
        <Panel selection={selection} graph={graph} types={types} issues={issues}
          results={results} pending={pending}
          onConfig={(node, config, label) => commit({ kind: "config", node, config, label })}
          onCondition={(edge, condition) => commit({ kind: "condition", edge, condition })}
          onDelete={deleteSelection} onRun={run} onResume={resume}
          onClose={() => setSelection(null)} />
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
