"""``GraphWidget``: the workflow canvas in a notebook, two-way synced with a ``Workflow``."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from fm_lab.engine.watchers import unwatch, watch, watching
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
from fm_lab.widget.static_graph import graph_html, graph_text
from fm_lab.widget.static_view import static_model_state

if TYPE_CHECKING:
    from fm_lab.engine.run import Run
    from fm_lab.engine.stream import RunStream
    from fm_lab.nodes.registry import NodeRegistry
    from fm_lab.store.base import RunStore

STATIC = Path(__file__).resolve().parent.parent / "static"
_CREATED = itertools.count()
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

    Edits in the canvas (drag, connect, delete, add from the palette, config forms) change
    :attr:`workflow` *in place* (every variable bound to it sees them) and are validated
    (:attr:`issues`); ``widget.workflow = wf`` shows another workflow. Any run of the workflow
    in this process (:meth:`run`, the Run button, ``fm_lab.run(wf)``, ``%flow run``, a sweep)
    colours the nodes live; a suspended node shows a form that resumes the run. ``executor``
    is where the Run button runs it (``"temporal"`` or its URL; default: this process); a form
    answers the run wherever it executes. ``height`` is in pixels; 0 (the default) fits the
    canvas to the graph.

    Every output of the canvas also carries a static picture of the graph and its last run
    (HTML/SVG and a text summary), which a reopened notebook, nbviewer and GitHub show.

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
    # the static picture (HTML, text) and the tiny widget state that shows it in a notebook
    # reopened without a kernel (the canvas writes it into the notebook's widget metadata)
    snapshot = traitlets.Dict().tag(sync=True)
    # the `%%flow` line of the cell this canvas was made by ("" for other canvases): its
    # graph can be written back into that cell (`%flow save`, the Save button)
    cell_line = traitlets.Unicode("").tag(sync=True)
    unsaved = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        workflow: Workflow | dict[str, Any] | str | Path,
        *,
        registry: NodeRegistry | None = None,
        store: RunStore | None = None,
        executor: str | None = None,
        height: int = 0,
        **kwargs: Any,
    ) -> None:
        from fm_lab.engine.api import load_workflow
        from fm_lab.nodes.registry import default_registry

        # set per instance, not on the class: anywidget reads class-level files at import time
        self._esm, self._css = _bundle()
        self._registry = registry or default_registry()
        self._store = store
        self._executor = executor
        self._lock = threading.RLock()
        self._own_change = False
        self._workflow = load_workflow(workflow)
        self._baseline = self._workflow.to_dict()  # what the cell (or caller) gave
        self._run: Run | None = None
        self._followed: str | None = None  # the run being coloured now
        self._followed_ended = False  # it has sent its last event
        self.created = next(_CREATED)  # which of several canvases of a workflow is newest
        self.source_text: str | None = None  # the %%flow cell's text it was made from
        self.last_error: BaseException | None = None
        with self._own():  # validated once, below
            super().__init__(
                graph=self._baseline,
                node_types=node_type_rows(self._registry),
                height=height,
                **kwargs,
            )
        self._check(self._workflow)
        self._refresh_snapshot()
        watch(self._workflow.id, self)
        self._watched = self._workflow.id
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
        self._baseline = workflow.to_dict()
        self._changed(workflow)

    @property
    def has_unsaved_edits(self) -> bool:
        """True when the canvas changed the workflow since it was given (or last saved)."""
        return self._workflow.to_dict() != self._baseline

    def mark_saved(self, saved: Workflow | None = None) -> None:
        """Take ``saved`` (default: the current graph) as what the cell holds, after writing
        the graph into it; :attr:`unsaved` says whether the canvas differs from it."""
        self._baseline = (saved or self._workflow).to_dict()
        self.unsaved = self.has_unsaved_edits

    def cell_text(self) -> str:
        """The ``%%flow`` cell that defines the current graph (its line, then YAML)."""
        if not self.cell_line:
            raise ValueError("this canvas was not made by a %%flow cell")
        return f"{self.cell_line}\n{self._workflow.to_yaml().rstrip()}"

    def write_cell(self) -> None:
        """Ask the canvas (in the browser) to write :meth:`cell_text` into its ``%%flow``
        cell; :attr:`unsaved` turns False when the browser has done it."""
        self.send({"kind": "write_cell", "text": self.cell_text()})

    @property
    def valid(self) -> bool:
        """True when the canvas has no validation issues."""
        return not self.issues

    @property
    def last_run(self) -> Run | None:
        """The last run of this workflow the canvas showed (started here or elsewhere in
        this process)."""
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
            self._workflow.update_from(workflow)  # the same object: `name` sees the edit
            self._changed(self._workflow)
        self.synced = self.edit_seq

    def _changed(self, workflow: Workflow) -> None:
        """Validate, re-watch under the (maybe new) id and redraw the static picture."""
        self._check(workflow)
        if workflow.id != self._watched:
            unwatch(self._watched, self)
            watch(workflow.id, self)
            self._watched = workflow.id
        self.unsaved = self.has_unsaved_edits
        self._refresh_snapshot()

    def _check(self, workflow: Workflow) -> None:
        self.handles = route_handles(workflow, self._registry)
        self.issues = issue_rows(workflow.issues(self._registry))

    # ---- the static picture ---------------------------------------------------------------
    def _picture(self) -> tuple[str, str]:
        waiting = {str(p["node"]) for p in self.pending if p.get("node")}
        args = (self._workflow, self.results, waiting, self.run_state)
        return graph_html(*args), graph_text(*args)

    def _refresh_snapshot(self) -> None:
        html, text = self._picture()
        self.snapshot = {"html": html, "text": text, "model_id": self.model_id,
                         "model_state": static_model_state(self, html)}

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The canvas, with the static picture and a text summary in the same bundle."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)
        if data is None:
            return bundle
        html, text = self._picture()
        data = {**data, "text/html": html, "text/plain": text}
        return data if metadata is None else (data, metadata)

    # ---- runs ---------------------------------------------------------------------------
    def run(self, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Run:
        """Run the drawn workflow (``fm_lab.run`` arguments), colouring nodes as they finish."""
        from fm_lab.engine import api

        self._start()
        try:
            if self._executor is not None:
                kwargs.setdefault("executor", self._executor)
            result = api.run(self._workflow, inputs, **self._run_kwargs(kwargs))
        except Exception as exc:
            self._failed(exc)
            raise
        if self._run is not result:  # not heard as a watcher (the workflow's id changed)
            self._finish(result)
        return result

    def stream(self, inputs: dict[str, Any] | None = None, **kwargs: Any) -> RunStream:
        """Run the drawn workflow as :func:`fm_lab.stream` does (its typed events, to iterate
        or not), colouring nodes as they finish."""
        from fm_lab.engine.stream import stream

        self._start()
        return stream(self._workflow, inputs, **self._run_kwargs(kwargs))

    def resume(
        self,
        data: Any = None,
        *,
        run_id: str | None = None,
        **kwargs: Any,
    ) -> Run:
        """Resume a suspension of the last run (``fm_lab.resume`` arguments: ``label``,
        ``node``, ``path_id``); redraws the top-level run afterwards."""
        from fm_lab.engine import api

        top = self._run.run_id if self._run is not None else run_id
        target = run_id or top
        if target is None:
            raise ValueError("nothing to resume: this widget has not run yet; pass run_id=")
        shown = self._run
        self._start(keep_results=True)
        try:
            result = api.resume(target, data, **self._run_kwargs(kwargs))
        except Exception as exc:
            self._show_again(top, shown)
            self._failed(exc)
            raise
        if top is not None and top != result.run_id:  # a child run was resumed
            result = api.get_run(top, store=result.store)
        if self._run is shown:  # not heard as a watcher: draw the outcome here
            self._finish(result)
        return result

    def _show_again(self, run_id: str | None, shown: Run | None) -> None:
        """After a refused answer: the run as stored, so the forms still waiting stay (with
        the error beside them) and one answered meanwhile by someone else goes."""
        from fm_lab.engine import api

        if run_id is None:
            return
        try:
            self._finish(api.get_run(run_id, store=shown.store if shown else self._store))
        except Exception:  # the refusal is what the user must see
            return

    def _run_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("registry", self._registry)
        kwargs.setdefault("progress", False)  # the canvas is the progress display
        if self._store is not None:
            kwargs.setdefault("store", self._store)
        return kwargs  # the canvas hears of the run as a watcher of its workflow

    # ---- runs of this workflow from anywhere in the process (engine.watchers) -------------
    def run_event(self, event: dict[str, Any], store: RunStore) -> None:
        """Colour the top-level nodes of one run at a time: a run that starts is followed
        unless another one is still going (runs of a local batch are shown one by one)."""
        run_id = event.get("run_id")
        with self._lock:
            is_run = event.get("type") == "run"
            starts = is_run and event.get("status") == "running"
            free = self._followed is None or self._followed_ended
            if starts and run_id != self._followed and free:
                self._followed, self._followed_ended = run_id, False
                if run_id not in {p.get("run_id") for p in self.pending}:
                    self.results = {}  # a new run (a resumed one keeps its colours)
                self.pending = []
            if run_id != self._followed:
                return
            if is_run and not starts:
                self._followed_ended = True
        self._on_event(event)

    def run_finished(self, run: Run) -> None:
        """Show the final statuses, the suspensions waiting for data and the picture."""
        with self._lock:
            if run.run_id != self._followed:
                return
            self._followed = None
        self._finish(run)

    def _start(self, keep_results: bool = False) -> None:
        with self._lock:
            self._followed = None  # a run started here is shown, whatever else is running
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
                "policy": run.policy,
            }
            self._refresh_snapshot()

    def close(self) -> None:
        """Stop hearing of runs and close the canvas."""
        watched = getattr(self, "_watched", None)  # unset when __init__ failed early
        if watched is not None:
            unwatch(watched, self)
        super().close()

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
            if kind == "cell_written":  # the browser wrote the graph into the cell
                if content.get("ok"):
                    self.mark_saved()
                else:
                    raise RuntimeError(f"could not write the %%flow cell: {content.get('error')}")
            elif kind == "save":  # the canvas's Save button
                self.write_cell()
            elif kind == "run":
                self.run(dict(content.get("inputs") or {}))
            elif kind == "resume":
                self.resume(content.get("data"), run_id=content.get("run_id"),
                            path_id=content.get("path_id"))
            else:
                raise ValueError(f"unknown widget message kind {kind!r}")
        except Exception as exc:  # shown in the canvas; kept in last_error
            self._failed(exc)


def canvas(workflow: Workflow) -> GraphWidget | None:
    """The open canvas showing ``workflow`` (the object a ``%%flow`` cell bound, say), the
    newest if there are several; None when no canvas shows it.

    >>> w = fm_lab.widget.canvas(triage)   # doctest: +SKIP
    >>> w.run({"review": "..."})            # doctest: +SKIP
    """
    shown = [w for w in watching(workflow.id)
             if isinstance(w, GraphWidget) and w.workflow is workflow]
    return max(shown, key=lambda w: w.created, default=None)


def show(workflow: Workflow | dict[str, Any] | str | Path, **kwargs: Any) -> GraphWidget:
    """Display a :class:`GraphWidget` of ``workflow`` now and return it (assign the result,
    ``w = show(wf)``, so the notebook does not display it a second time)."""
    from IPython.display import display

    widget = GraphWidget(workflow, **kwargs)
    display(widget)  # type: ignore[no-untyped-call]
    return widget
