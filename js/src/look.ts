/** Colours and icons of statuses and node types, from the one palette the Python side reads
 * too (`src/fm_lab/palette.json`); third-party types get the generic look. */
import palette from "../../src/fm_lab/palette.json";

interface Palette {
  statuses: Record<string, string>;
  families: Record<string, { colour: string; types: string[] }>;
  other_type: string;
  icons: Record<string, string>;
}

const PALETTE: Palette = palette;

/** The colour of a node type's family. */
export function colourOf(type: string): string {
  for (const family of Object.values(PALETTE.families)) {
    if (family.types.includes(type)) return family.colour;
  }
  return PALETTE.other_type;
}

/** The colour of a node or run status (unknown statuses look idle). */
export function statusColour(status: string): string {
  return PALETTE.statuses[status] ?? PALETTE.statuses.idle;
}

/** SVG path data of a node type's icon (viewBox 0 0 16 16, stroked). */
export function iconPath(type: string): string {
  return PALETTE.icons[type] ?? PALETTE.icons.other;
}

/** CSS custom properties `--fm-status-<status>` for the stylesheet's status classes. */
export function statusVars(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(PALETTE.statuses).map(([status, colour]) => [`--fm-status-${status}`, colour]),
  );
}
