"""``fm_lab.workflows``: the workflow registry over the versions a store keeps.

A store keeps each distinct content of a workflow id as a numbered version (the first run of
that content stores it, and so does :meth:`WorkflowRegistry.save`). ``subflow`` nodes, bodies
and ``fm-lab run`` name a stored workflow as ``id`` (its newest version) or ``id@3``.
``fm_lab.workflows`` stays callable as it was (``fm_lab.workflows("triage")``: its versions).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.identity import current_user
from fm_lab.store.default import default_store

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore

LIST_COLUMNS = ("workflow_id", "name", "latest_version", "versions", "hash", "saved_by",
                "updated_at")
"""The columns of :meth:`WorkflowRegistry.list`, in order."""


class WorkflowRegistry:
    """Save, list, load and trace the history of stored workflows (DataFrames, newest first).

    >>> fm_lab.workflows.save(wf)                 # doctest: +SKIP
    2
    >>> fm_lab.workflows.list()                   # doctest: +SKIP
    >>> fm_lab.workflows.load("triage", version=1)  # doctest: +SKIP
    >>> fm_lab.workflows.history("triage")        # doctest: +SKIP
    """

    def __call__(self, workflow_id: str | None = None,
                 store: RunStore | None = None) -> pd.DataFrame:
        """Stored workflow versions, newest first: ``workflow_id, version, hash, name,
        saved_by, created_at``. ``saved_by`` is who saved the version (or started the run
        that stored it first). ``runs()`` shows each run's ``workflow_hash``."""
        return (store or default_store()).workflows(workflow_id)

    def save(self, workflow: Workflow | str | Path | dict[str, Any], *,
             store: RunStore | None = None) -> int:
        """Validate and store ``workflow`` (an object, a YAML/JSON file or a dict) as a new
        version of its id, unless that exact content is stored already; return its version
        number. An invalid workflow raises :class:`~fm_lab.WorkflowValidationError` and
        stores nothing."""
        from fm_lab.engine.api import load_workflow

        found = load_workflow(workflow)
        found.validate()
        return (store or default_store()).save_workflow(found, current_user())

    def load(self, workflow_id: str, version: int | None = None, *,
             store: RunStore | None = None) -> Workflow:
        """Stored version ``version`` of ``workflow_id`` (None: the newest); ``"id@3"`` also
        names version 3. Raises ``FileNotFoundError`` naming the versions there are."""
        from fm_lab.engine.bodies import split_reference

        if version is None:
            workflow_id, version = split_reference(workflow_id)
        return (store or default_store()).load_workflow(workflow_id, version)

    def history(self, workflow_id: str, store: RunStore | None = None) -> pd.DataFrame:
        """The versions of ``workflow_id``, newest first (``FileNotFoundError`` if it has
        none), each with the number of runs that ran it."""
        chosen = store or default_store()
        frame = chosen.workflows(workflow_id)
        if frame.empty:
            raise FileNotFoundError(f"no stored workflow named {workflow_id!r} (saved ones: "
                                    "fm_lab.workflows.list())")
        runs = chosen.runs(limit=None)
        counts = runs[runs["workflow_id"] == workflow_id]["workflow_version"].value_counts()
        frame = frame.reset_index(drop=True)
        frame["runs"] = [int(counts.get(v, 0)) for v in frame["version"]]
        return frame

    def list(self, store: RunStore | None = None) -> pd.DataFrame:
        """One row per stored workflow, most recently saved first: its name, newest
        version, number of versions, and who saved the newest one and when."""
        import pandas as pd

        frame = (store or default_store()).workflows()
        if frame.empty:
            return pd.DataFrame(columns=list(LIST_COLUMNS))
        newest = frame.sort_values(["workflow_id", "version"], ascending=[True, False])
        rows = [{"workflow_id": workflow_id, "name": group["name"].iloc[0],
                 "latest_version": int(group["version"].iloc[0]), "versions": len(group),
                 "hash": group["hash"].iloc[0], "saved_by": group["saved_by"].iloc[0],
                 "updated_at": group["created_at"].iloc[0]}
                for workflow_id, group in newest.groupby("workflow_id", sort=False)]
        listed = pd.DataFrame(rows, columns=list(LIST_COLUMNS))
        return listed.sort_values(["updated_at", "workflow_id"],
                                  ascending=[False, True]).reset_index(drop=True)

    def __repr__(self) -> str:
        return ("fm_lab.workflows: call it for versions, or .save(wf), .list(), "
                ".load(id, version=), .history(id)")


workflows = WorkflowRegistry()
"""The registry: ``fm_lab.workflows.save(wf)``, ``.list()``, ``.load(id, version=)``,
``.history(id)``; ``fm_lab.workflows(id)`` lists versions as before."""

__all__ = ["WorkflowRegistry", "workflows"]
