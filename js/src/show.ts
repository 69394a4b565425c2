/** Values as readable text for the side panel (pure). */

/** A value as text: strings as they are, anything else as indented JSON. */
export function show(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

export interface ErrorParts {
  title: string;
  message: string;
  traceback: string | null;
}

/** A stored node error (`{type, message, traceback, ...}`) as a title, message and traceback. */
export function errorParts(error: unknown): ErrorParts {
  if (error !== null && typeof error === "object" && !Array.isArray(error)) {
    const e = error as Record<string, unknown>;
    const kind = typeof e.kind === "string" ? ` (${e.kind})` : "";
    return {
      title: `${typeof e.type === "string" ? e.type : "Error"}${kind}`,
      message: typeof e.message === "string" ? e.message : show(error),
      traceback: typeof e.traceback === "string" && e.traceback ? e.traceback : null,
    };
  }
  return { title: "Error", message: show(error), traceback: null };
}
