/** Whether the user is working in this canvas: true after a press inside `el`, false after a
 * press anywhere else. The wheel zooms only then (else it scrolls the notebook), and the
 * undo/redo keys act only then. */
import { type RefObject, useEffect, useState } from "react";

export function useActive(el: RefObject<HTMLElement>): boolean {
  const [active, setActive] = useState(false);
  useEffect(() => {
    const onDown = (e: Event): void => {
      const inside = el.current !== null && e.target instanceof globalThis.Node && el.current.contains(e.target);
      setActive(inside);
    };
    document.addEventListener("pointerdown", onDown, true);
    return () => document.removeEventListener("pointerdown", onDown, true);
  }, [el]);
  return active;
}

/** True for a key event typed into a text field (its own undo applies there). */
export function inTextField(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  return t !== null && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT"
    || t.isContentEditable);
}

/** "undo", "redo" or null for a key event (Ctrl/Cmd+Z, Shift+Ctrl/Cmd+Z, Ctrl+Y). */
export function historyKey(e: KeyboardEvent): "undo" | "redo" | null {
  if (!(e.ctrlKey || e.metaKey) || e.altKey) return null;
  const key = e.key.toLowerCase();
  if (key === "z") return e.shiftKey ? "redo" : "undo";
  if (key === "y" && !e.shiftKey) return "redo";
  return null;
}
