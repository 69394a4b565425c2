/** A node error: its type and message, the traceback folded away. */
import { errorParts } from "./show";

export function ErrorView(props: { error: unknown }): JSX.Element {
  const { title, message, traceback } = errorParts(props.error);
  return (
    <div className="fm-error-view" data-testid="fm-error">
      <div className="fm-error"><b>{title}</b>: <span className="fm-error-message">{message}</span></div>
      {traceback && (
        <details className="fm-traceback">
          <summary>traceback</summary>
          <pre>{traceback}</pre>
        </details>
      )}
    </div>
  );
}
