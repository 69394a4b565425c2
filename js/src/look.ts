/** Icons and colours of node types (third-party types get the generic look). */

const FAMILIES: Record<string, [string, string[]]> = {
  flow: ["#3b82f6", ["input", "output", "merge", "log"]],
  code: ["#8b5cf6", ["code", "transform", "template"]],
  io: ["#14b8a6", ["http"]],
  llm: ["#f97316", ["llm", "agent"]],
  control: ["#eab308", ["branch", "router", "set_state", "fail"]],
  composite: ["#6366f1", ["foreach", "parallel", "subflow"]],
  timing: ["#64748b", ["sleep", "sleep_until"]],
  human: ["#ec4899", ["approval", "user_input", "wait_for_event"]],
};

const ICONS: Record<string, string> = {
  input: "▶", output: "■", merge: "⋈", log: "≡", code: "λ", http: "⇄", llm: "✦", agent: "✦",
  template: "T", transform: "ƒ", branch: "⑂", router: "⑂", set_state: "σ", fail: "✕",
  foreach: "↻", parallel: "∥", subflow: "⧉", sleep: "◔", sleep_until: "◔", approval: "✔",
  user_input: "✎", wait_for_event: "⌛",
};

export function colourOf(type: string): string {
  for (const [colour, types] of Object.values(FAMILIES)) if (types.includes(type)) return colour;
  return "#94a3b8";
}

export function iconOf(type: string): string {
  return ICONS[type] ?? "●";
}
