"""The ``Run`` handle: status, outputs and per-node results of one run."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fm_lab.engine.errors import RunFailedError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from fm_lab.engine.replay import Replay
    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore
    from fm_lab.store.records import NodeRecord, StoredNode

STATUSES = ("running", "succeeded", "failed", "suspended", "cancelled")


@dataclass(frozen=True)
class NodeResult:
    """One node's latest result in a run."""

    node_id: str
    status: str
    output: Any
    error: dict[str, Any] | None
    attempts: int
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    cached_from: dict[str, str] | None = None  # the run and path whose output was reused

    @property
    def duration_ms(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds() * 1000


class Run:
    """A workflow run: ``status``, ``outputs``, ``node(id)``, ``nodes_df()``.

    >>> import fm_lab
    >>> wf = fm_lab.Workflow.from_dict({"id": "demo", "nodes": {"hi": {"type": "template",
    ...     "config": {"template": "hi {{ inputs.who }}"}}}})
    >>> run = fm_lab.run(wf, inputs={"who": "there"}, store=fm_lab.Store(":memory:"))
    >>> run.status, run.outputs
    ('succeeded', {'hi': 'hi there'})
    """

    def __init__(
        self,
        run_id: str,
        store: RunStore,
        *,
        workflow: Workflow,
        status: str,
        outputs: Any,
        error: dict[str, Any] | None,
        nodes: Mapping[str, NodeRecord | StoredNode],
        state: dict[str, Any] | None = None,
        policy: str | None = None,
        forked_from: str | None = None,
        forked_at_node: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.forked_from = forked_from  # the run this one was forked from (Run.fork)
        self.forked_at_node = forked_at_node  # and the node path it was forked at
        self.policy = policy  # the execution policy it ran under (None: stored before policies)
        self.store = store
        self.workflow = workflow
        self.status = status
        self.outputs = outputs
        self.error = error
        self.state = state
        self._nodes = nodes

    @classmethod
    def load(cls, run_id: str, store: RunStore) -> Run:
        """Read a stored run."""
        snap = store.load_run(run_id)
        return cls(
            run_id,
            store,
            workflow=snap.workflow,
            status=snap.status,
            outputs=snap.outputs,
            error=snap.error,
            nodes=snap.nodes,
            state=snap.state,
            policy=snap.policy,
            forked_from=snap.forked_from,
            forked_at_node=snap.forked_at_node,
        )

    def refresh(self) -> Run:
        """Re-read this run from the store (e.g. after another process resumed it)."""
        fresh = Run.load(self.run_id, self.store)
        self.__dict__.update(fresh.__dict__)
        return self

    def node(self, node_id: str) -> NodeResult:
        """The latest result of ``node_id`` (status ``pending`` if it has not run)."""
        if node_id not in self.workflow.nodes:
            raise KeyError(
                f"run {self.run_id} has no node {node_id!r}; nodes: "
                f"{', '.join(self.workflow.nodes)}"
            )
        rec = self._nodes.get(node_id)
        if rec is None:
            return NodeResult(node_id, "pending", None, None, 0, None, None)
        return NodeResult(
            node_id,
            rec["status"],
            rec.get("output"),
            rec.get("error"),
            rec.get("attempts") or 0,
            _ts(rec.get("started")),
            _ts(rec.get("ended")),
            rec.get("cached_from"),
        )

    def nodes_df(self) -> pd.DataFrame:
        """One row per node: status, attempts, timings, output and error (from the store)."""
        return self.store.node_executions(self.run_id)

    def rerun(self, *nodes: str, **kwargs: Any) -> Run:
        """A new run recomputing ``nodes`` and what depends on them, reusing every other
        unchanged result of this one (see :func:`fm_lab.rerun`)."""
        from fm_lab.engine.api import rerun

        return rerun(self, *nodes, **kwargs)

    async def arerun(self, *nodes: str, **kwargs: Any) -> Run:
        """Async :meth:`rerun`."""
        from fm_lab.engine.api import arerun

        return await arerun(self, *nodes, **kwargs)

    def fork(self, at: str | None = None, **kwargs: Any) -> Run:
        """A new run starting from node path ``at`` of this one with an edited ``output``,
        ``state``, ``inputs`` or ``workflow``, reusing every result the edit cannot reach
        (see :func:`fm_lab.fork`)."""
        from fm_lab.engine.fork import fork

        return fork(self, at, **kwargs)

    async def afork(self, at: str | None = None, **kwargs: Any) -> Run:
        """Async :meth:`fork`."""
        from fm_lab.engine.fork import afork

        return await afork(self, at, **kwargs)

    @property
    def reproducible(self) -> bool:
        """Whether :func:`fm_lab.replay` can answer every model call of this run from its
        recorded responses (so a replay calls no provider)."""
        from fm_lab.engine.replay import reproducible

        return reproducible(self)

    def replay(self, **kwargs: Any) -> Replay:
        """Run this run again offline and report what differs (see :func:`fm_lab.replay`)."""
        from fm_lab.engine.replay import replay

        return replay(self, **kwargs)

    def raise_for_status(self) -> Run:
        """Raise :class:`RunFailedError` unless the run succeeded."""
        if self.status == "failed":
            err = self.error or {}
            raise RunFailedError(
                f"run {self.run_id} failed at node {err.get('node')!r}: "
                f"[{err.get('kind')}] {err.get('message')}"
            )
        return self

    def __repr__(self) -> str:
        return f"<Run {self.run_id} {self.workflow.id} {self.status}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """The plain-text summary terminals show: status and one line per node."""
        width = max((len(n) for n in self.workflow.nodes), default=4)
        lines = [f"Run {self.run_id} of {self.workflow.id}: {self.status}"]
        for node_id in self.workflow.nodes:
            res = self.node(node_id)
            ms = f"{res.duration_ms:8.1f} ms" if res.duration_ms is not None else " " * 11
            detail = (res.error or {}).get("message", "") or _short(res.output, 60)
            lines.append(f"  {node_id:<{width}}  {res.status:<9} {ms}  {detail}")
        printer.text("\n".join(lines))

    def _repr_html_(self) -> str:
        """The run and a row per node, statuses in the palette's colours (as the canvas and
        the progress display show them)."""
        rows = []
        for node_id in self.workflow.nodes:
            res = self.node(node_id)
            ms = f"{res.duration_ms:.1f} ms" if res.duration_ms is not None else ""
            detail = html.escape((res.error or {}).get("message", "") or _short(res.output))
            rows.append(
                f"<tr><td><code>{html.escape(node_id)}</code></td><td>{_status(res.status)}</td>"
                f"<td>{ms}</td><td>{detail}</td></tr>"
            )
        return (
            f"<div><b>Run {html.escape(self.run_id)}</b> of "
            f"<code>{html.escape(self.workflow.id)}</code>: <b>{_status(self.status)}</b>"
            f"<table><tr><th>node</th><th>status</th><th>time</th><th>output / error</th>"
            f"</tr>{''.join(rows)}</table></div>"
        )


def _status(status: str) -> str:
    from fm_lab.palette import status_colour

    return f"<span style='color:{status_colour(status)}'>{html.escape(status)}</span>"


def _ts(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
