/** The side panel's edit forms: a node's label and config, an edge's condition. Each hands
 * its form to the editor (`guard`) so unapplied edits are not lost on a change of selection. */
import { type Ref, useImperativeHandle, useRef, useState } from "react";

import { type FormHandle, SchemaForm } from "./SchemaForm";
import type { EdgeSpec, NodeSpec, NodeTypeInfo } from "./types";

function useGuard(guard: Ref<FormHandle> | undefined): React.RefObject<FormHandle> {
  const form = useRef<FormHandle>(null);
  useImperativeHandle(guard, () => ({
    dirty: () => form.current?.dirty() ?? false,
    apply: () => form.current?.apply() ?? true,
  }));
  return form;
}

/** The node label (its own field: a config key named `label` stays config) and the config. */
export function ConfigEditor(props: {
  id: string;
  spec: NodeSpec;
  type: NodeTypeInfo | undefined;
  guard?: Ref<FormHandle>;
  onConfig: (node: string, config: Record<string, unknown>, label: string | null) => void;
}): JSX.Element {
  const { id, spec, type } = props;
  const initialLabel = spec.label ?? "";
  const [label, setLabel] = useState(initialLabel);
  const form = useGuard(props.guard);
  return (
    <section className="fm-config">
      <label className="fm-field">
        <span className="fm-field-name">node label</span>
        <input type="text" name="fm-node-label" data-testid="fm-node-label" value={label}
          placeholder={id} onChange={(e) => setLabel(e.target.value)}
          onKeyDown={(e) => { if (e.key === "Enter") form.current?.apply(); }} />
      </label>
      <h4>Config</h4>
      {type === undefined && <p className="fm-error">unknown node type {spec.type}</p>}
      <SchemaForm schema={type?.schema ?? { properties: {} }} value={spec.config ?? {}}
        submitLabel="Apply" testId="fm-config-form" handle={form}
        extraDirty={label !== initialLabel}
        onSubmit={(config) => props.onConfig(id, config, label.trim() || null)} />
    </section>
  );
}

const CONDITION = { properties: { condition: { type: "string",
  description: "Template; the edge is taken when it renders truthy" } } };

export function ConditionEditor(props: {
  index: number;
  edge: EdgeSpec;
  guard?: Ref<FormHandle>;
  onCondition: (edge: number, condition: string | null) => void;
}): JSX.Element {
  const { index, edge } = props;
  const form = useGuard(props.guard);
  return (
    <SchemaForm schema={CONDITION} value={{ condition: edge.condition ?? undefined }}
      submitLabel="Apply" handle={form} testId="fm-condition-form"
      onSubmit={(v) => props.onCondition(index, typeof v.condition === "string" ? v.condition : null)} />
  );
}
