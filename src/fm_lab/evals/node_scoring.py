"""Nodes that carry scorers (as Mastra's steps do): ``ev.scored(wf, {"answer": [judge]},
sample=0.1)`` scores a sample of what those nodes output, as each run of the workflow in this
process finishes, off the run's path (a judge's model call never delays the run). Verdicts go
to :func:`fm_lab.evals.scores` with the run's id, their spans into the run's trace."""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fm_lab.evals.scorers import Case, Scorer

if TYPE_CHECKING:
    from fm_lab.engine.run import Run
    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore

_KEPT: set[ScoredNodes] = set()  # watchers are held weakly: these live until stop()


class ScoredNodes:
    """Scores a sample of some nodes' outputs as runs of one workflow finish (see the
    module); :meth:`wait` for the scoring under way, :meth:`stop` to end it. A new one for
    the same workflow (a notebook cell run again) replaces it."""

    def __init__(self, workflow: Workflow, scorers: Mapping[str, list[Scorer]],
                 sample: float | None, seed: int | None, store: RunStore | None) -> None:
        from fm_lab.engine.watchers import watch

        unknown = sorted(set(scorers) - set(workflow.nodes))
        if unknown:
            raise ValueError(f"workflow {workflow.id!r} has no node {', '.join(unknown)} "
                             f"(nodes: {', '.join(workflow.nodes)})")
        self.workflow_id = workflow.id
        self.scorers = dict(scorers)
        self.sample, self.store = sample, store
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        """Scoring that failed (it never fails the run it scores)."""
        for earlier in [k for k in _KEPT if k.workflow_id == self.workflow_id]:
            earlier.stop()  # the cell run again: this one replaces it, never scores twice
        watch(self.workflow_id, self)
        _KEPT.add(self)

    def run_event(self, event: dict[str, Any], store: RunStore) -> None:
        """Events are not scored: finished runs are."""

    def run_finished(self, run: Run) -> None:
        """Score the watched nodes that succeeded in ``run``, on a thread of their own."""
        worker = threading.Thread(target=self._score, args=(run,), daemon=True,
                                  name=f"fm_lab-score-{run.run_id}")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [worker]
        worker.start()

    def _score(self, run: Run) -> None:
        from fm_lab.evals.online import score_found
        from fm_lab.sync import run_sync

        try:
            snapshot = run.store.load_run(run.run_id)
            for node_id, scorers in self.scorers.items():
                record = snapshot.nodes.get(node_id)
                if record is None or record["status"] != "succeeded":
                    continue
                given = record.get("input")
                case = Case(record.get("output"), None,
                            given if isinstance(given, dict) else dict(snapshot.inputs),
                            {"workflow_id": self.workflow_id, "node": node_id})
                with self._lock:  # one seeded sequence of draws, whatever thread scores
                    rng = random.Random(self._rng.random())
                run_sync(score_found([(case, run.run_id, snapshot.trace_id or "", None)],
                                     scorers, self.sample, rng, self.store or run.store))
        except Exception as exc:  # kept in errors: a run is never failed by its scoring
            self.errors.append(exc)

    def wait(self, timeout_s: float | None = None) -> None:
        """Return once the scoring started so far has ended."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout_s)

    def stop(self) -> None:
        """Score no more runs (what is under way finishes)."""
        from fm_lab.engine.watchers import unwatch

        unwatch(self.workflow_id, self)
        _KEPT.discard(self)

    def __repr__(self) -> str:
        nodes = ", ".join(f"{n}: {len(s)} scorer{'s' * (len(s) != 1)}"
                          for n, s in self.scorers.items())
        return f"ScoredNodes({self.workflow_id!r}, {nodes}, sample={self.sample})"
