"""A fork beside its parent: both runs drawn as the canvas's static picture, the nodes whose
result changed outlined in the fork's, and the :func:`fm_lab.diff` rows of what changed."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from fm_lab.engine.diff import diff
from fm_lab.engine.run import Run
from fm_lab.widget.convert import result_rows
from fm_lab.widget.static_graph import graph_svg

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.base import RunStore

_MARK = "#dc2626"  # the outline of a changed node


class ForkView:
    """``parent`` and ``fork`` side by side (HTML in notebooks, the diff as text elsewhere);
    ``changes`` is the :func:`fm_lab.diff` of the two, ``changed`` the top-level node ids
    whose status or output differ (outlined in the fork's picture)."""

    def __init__(self, parent: Run, fork: Run) -> None:
        self.parent, self.fork = parent, fork
        self.changes: pd.DataFrame = diff(parent, fork)
        top = self.changes[self.changes["changed"]]["path"]
        self.changed = [p for p in top if p in fork.workflow.nodes]

    @staticmethod
    def _picture(run: Run, title: str) -> str:
        svg = graph_svg(run.workflow, result_rows(run))
        return (f'<div style="flex:1;min-width:0"><div style="font-size:12px;margin:2px 0">'
                f"{html.escape(title)} <code>{html.escape(run.run_id)}</code>: "
                f"{html.escape(run.status)}</div>{svg}</div>")

    def _repr_html_(self) -> str:
        scope = f"fm-fork-{html.escape(self.fork.run_id)}"
        marks = "".join(
            f'#{scope} .fm-fork-new g.fm-node[data-node-id="{html.escape(n)}"] rect:first-of-type'
            f"{{stroke:{_MARK};stroke-width:3}}" for n in self.changed)
        at = self.fork.forked_at_node
        rows = "".join(
            f"<tr><td><code>{html.escape(str(r.path))}</code></td><td>{html.escape(str(r.change))}"
            f"</td><td><pre style=\"margin:0\">{html.escape(str(r.output_diff))}</pre></td></tr>"
            for r in self.changes[self.changes["changed"]].itertuples())
        return (f'<div id="{scope}"><style>{marks}</style>'
                f'<div style="display:flex;gap:12px">'
                f"{self._picture(self.parent, 'parent')}"
                f'<div class="fm-fork-new" style="flex:1;min-width:0">'
                f"{self._picture(self.fork, f'fork at {at}' if at else 'fork')}"
                f"</div></div><table><tr><th>changed</th><th>how</th><th>output diff</th></tr>"
                f"{rows}</table></div>")

    def __repr__(self) -> str:
        changed = self.changes[self.changes["changed"]]
        lines = [f"fork {self.fork.run_id} of {self.parent.run_id}: "
                 f"{len(changed)} node(s) changed"]
        lines += [f"  {r.path:<20} {r.change:<8} {r.status_a} -> {r.status_b}"
                  for r in changed.itertuples()]
        return "\n".join(lines)


def compare(fork: Run | str, parent: Run | str | None = None,
            store: RunStore | None = None) -> ForkView:
    """Show ``fork`` beside ``parent`` (default: the run it was forked from), changed nodes
    outlined: ``fm_lab.widget.compare(run.fork("draft", output="..."))``."""
    from fm_lab.store.default import default_store

    store = store or (fork.store if isinstance(fork, Run) else default_store())
    forked = fork if isinstance(fork, Run) else Run.load(fork, store)
    if parent is None:
        if forked.forked_from is None:
            raise ValueError(f"run {forked.run_id} is not a fork: name the run to compare "
                             "it with, compare(run, parent)")
        parent = forked.forked_from
    return ForkView(parent if isinstance(parent, Run) else Run.load(parent, store), forked)


__all__ = ["ForkView", "compare"]
