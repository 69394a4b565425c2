"""``GraphWidget``: the workflow canvas in a notebook, two-way synced with a ``Workflow``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from fm_lab.spec.errors import WorkflowValidationError
from fm_lab.spec.models import Workflow
from fm_lab.widget.convert import (
    issue_rows,
    jsonable,
    node_type_rows,
    pending_rows,
    result_rows,
    route_handles,
)

if TYPE_CHECKING:
    from fm_lab.engine.run import Run
    from fm_lab.nodes.registry import NodeRegistry
    from fm_lab.store.duckdb_store import Store

STATIC = Path(__file__).resolve().parent.parent / "static"
BUNDLE = STATIC / "widget.js"


class BundleMissingError(RuntimeError):
    """The built JavaScript of the widget is not installed."""


def _bundle() -> tuple[str, str]:
    """The built ESM and CSS of the canvas (read per widget, so a rebuild is picked up)."""
    css = BUNDLE.with_suffix(".css")
    if not BUNDLE.is_file() or not css.is_file():
        raise BundleMissingError(
            f"the widget's JavaScript bundle is missing ({BUNDLE}); build it with "
            "`npm --prefix js ci && npm --prefix js run build` or reinstall fm_lab "
            "(`pip install -e .` builds it when node and npm are available)"
        )
    return BUNDLE.read_text(encoding="utf-8"), css.read_text(encoding="utf-8")


class GraphWidget(anywidget.AnyWidget):
    """An editable, runnable canvas of a workflow.

    Edits in the canvas (drag, connect, delete, add from the palette, config forms) replace
    :attr:`workflow` and are validated (:attr:`issues`); ``widget.workflow = wf`` redraws it.
    :meth:`run` (or the Run button) colours nodes live; a suspended node shows a form built
    from its resume schema that resumes the run. ``height`` is in pixels; 0 (the default) fits
    the canvas to the graph.

    >>> w = GraphWidget(Workflow.from_file("examples/quickstart.flow.yaml"))  # doctest: +SKIP
    >>> w.workflow.nodes.keys()                                               # doctest: +SKIP
    """

    graph = traitlets.Dict().tag(sync=True)
    edit_seq = traitlets.Int(0).tag(sync=True)
    synced = traitlets.Int(0).tag(sync=True)
    node_types: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    handles = traitlets.Dict().tag(sync=True)
    issues: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    results = traitlets.Dict().tag(sync=True)
    pending: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    run_state = traitlets.Dict().tag(sync=True)
    height = traitlets.Int(0).tag(sync=True)  # pixels; 0: fit the graph (240..720)

    def __init__(
        self,
        workflow: Workflow | dict[str, Any] | str | Path,
        *,
        registry: NodeRegistry | None = None,
        store: Store | None = None,
        height: int = 0,
        **kwargs: Any,
    ) -> None:
        from fm_lab.engine.api import load_workflow
        from fm_lab.nodes.registry import default_registry

        # set per instance, not on the class: anywidget reads class-level files at import time
        self._esm, self._css = _bundle()
        self._registry = registry or default_registry()
        self._store = store
        self._lock = threading.RLock()
        self._own_change = False
        self._workflow = load_workflow(workflow)
        self._run: Run | None = None
        self.last_error: BaseException | None = None
        with self._own():  # validated once, below
            super().__init__(
                graph=self._workflow.to_dict(),
                node_types=node_type_rows(self._registry),
                height=height,
                **kwargs,
            )
        self._check(self._workflow)
        self.on_msg(self._on_message)

    # ---- the workflow -------------------------------------------------------------------
    @property
    def workflow(self) -> Workflow:
        """The workflow drawn (the last canvas edit that could be read as a workflow)."""
        return self._workflow

    @workflow.setter
    def workflow(self, value: Workflow | dict[str, Any] | str | Path) -> None:
        from fm_lab.engine.api import load_workflow

        workflow = load_workflow(value)
        with self._own():
            self.graph = workflow.to_dict()
        self._workflow = workflow
        self._check(workflow)

    @property
    def valid(self) -> bool:
        """True when the canvas has no validation issues."""
        return not self.issues

    @property
    def last_run(self) -> Run | None:
        """The run started or resumed last from this widget."""
        return self._run

    @contextmanager
    def _own(self) -> Iterator[None]:
        self._own_change = True
        try:
            yield
        finally:
            self._own_change = False

    @traitlets.observe("graph")
    def _graph_changed(self, change: dict[str, Any]) -> None:
        if self._own_change:
            return
        try:
            workflow = Workflow.from_dict(dict(change["new"]))
        except WorkflowValidationError as exc:  # unreadable: keep the last good workflow
            self.issues = issue_rows(exc.issues)
        else:
            self._workflow = workflow
            self._check(workflow)
        self.synced = self.edit_seq

    def _check(self, workflow: Workflow) -> None:
        self.handles = route_handles(workflow, self._registry)
        self.issues = issue_rows(workflow.issues(self._registry))

    # ---- runs ---------------------------------------------------------------------------
    def run(self, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Run:
        """Run the drawn workflow (``fm_lab.run`` arguments), colouring nodes as they finish."""
        import fm_lab

        self._start()
        try:
            result = fm_lab.run(self._workflow, inputs, **self._run_kwargs(kwargs))
        except Exception as exc:
            self._failed(exc)
            raise
        self._finish(result)
        return result

    def resume(
        self,
        data: Any = None,
        *,
        run_id: str | None = None,
        **kwargs: Any,
    ) -> Run:
        """Resume a suspension of the last run (``fm_lab.resume`` arguments: ``label``,
        ``node``, ``path_id``); redraws the top-level run afterwards."""
        import fm_lab

        top = self._run.run_id if self._run is not None else run_id
        target = run_id or top
        if target is None:
            raise ValueError("nothing to resume: this widget has not run yet; pass run_id=")
        self._start(keep_results=True)
        try:
            result = fm_lab.resume(target, data, **self._run_kwargs(kwargs))
        except Exception as exc:
            self._failed(exc)
            raise
        if top is not None and top != result.run_id:  # a child run was resumed
            result = fm_lab.get_run(top, store=result.store)
        self._finish(result)
        return result

    def _run_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("registry", self._registry)
        kwargs.setdefault("progress", False)  # the canvas is the progress display
        if self._store is not None:
            kwargs.setdefault("store", self._store)
        kwargs["on_event"] = self._on_event
        return kwargs

    def _start(self, keep_results: bool = False) -> None:
        with self._lock:
            self.last_error = None
            if not keep_results:
                self.results = {}
            self.pending = []
            self.run_state = {"status": "starting"}

    def _on_event(self, event: dict[str, Any]) -> None:
        """The engine's ``on_event`` hook (may run on a worker thread): recolour one node."""
        with self._lock:
            if event.get("type") == "run":
                self.run_state = {"run_id": event.get("run_id"), "status": event.get("status")}
            elif event.get("type") == "node" and event.get("path") == event.get("node_id"):
                node = str(event["node_id"])
                row = dict(self.results.get(node, {}))
                row.update(
                    status=event.get("status"),
                    duration_ms=event.get("duration_ms"),
                    error=jsonable(event.get("error")),
                )
                self.results = {**self.results, node: row}

    def _finish(self, run: Run) -> None:
        with self._lock:
            self._run = run
            results = result_rows(run, self._registry)
            self.results = results
            waiting = run.status == "suspended"
            self.pending = pending_rows(run.store, run.run_id, results) if waiting else []
            self.run_state = {
                "run_id": run.run_id,
                "status": run.status,
                "error": jsonable(run.error),
            }

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.last_error = exc
            self.run_state = {**self.run_state, "status": "error",
                              "message": f"{type(exc).__name__}: {exc}"}

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        """Run and Resume buttons. Errors are shown in the canvas (and kept in ``last_error``)
        instead of being raised into the kernel's message loop."""
        kind = content.get("kind")
        try:
            if kind == "run":
                self.run(dict(content.get("inputs") or {}))
            elif kind == "resume":
                self.resume(content.get("data"), run_id=content.get("run_id"),
                            path_id=content.get("path_id"))
            else:
                raise ValueError(f"unknown widget message kind {kind!r}")
        except Exception as exc:  # shown in the canvas; kept in last_error
            self._failed(exc)


def show(workflow: Workflow | dict[str, Any] | str | Path, **kwargs: Any) -> GraphWidget:
    """Display a :class:`GraphWidget` of ``workflow`` now and return it (assign the result,
    ``w = show(wf)``, so the notebook does not display it a second time)."""
    from IPython.display import display

    widget = GraphWidget(workflow, **kwargs)
    display(widget)  # type: ignore[no-untyped-call]
    return widget
