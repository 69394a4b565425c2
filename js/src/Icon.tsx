/** A node type's icon as inline SVG (no icon font needed). */
import { iconPath } from "./look";

export function Icon(props: { type: string; colour: string; size?: number }): JSX.Element {
  const size = props.size ?? 14;
  return (
    <svg className="fm-icon" viewBox="0 0 16 16" width={size} height={size} aria-hidden="true"
      fill="none" stroke={props.colour} strokeWidth={1.5} strokeLinecap="round"
      strokeLinejoin="round">
      <path d={iconPath(props.type)} />
    </svg>
  );
}
