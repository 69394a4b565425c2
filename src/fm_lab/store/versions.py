"""Stored workflow versions outside runs: what saving a workflow writes (the spec part of a
start record) and picking one version of those a store read."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fm_lab.spec.models import Workflow
    from fm_lab.store.records import StartRecord


def spec_record(workflow: Workflow, saved_by: str | None) -> StartRecord:
    """The start-record fields a store's version bookkeeping reads, for a workflow saved
    without a run (so a save and a run of the same content share one version)."""
    spec = workflow.to_dict()
    record: StartRecord = {
        "k": "start", "workflow_id": workflow.id, "version": workflow.version,
        "hash": workflow.content_hash(spec), "spec": spec, "inputs": {}, "pid": os.getpid(),
        "host": socket.gethostname(), "parent": None, "created": time.time(),
    }
    if saved_by is not None:
        record["by"] = saved_by
    return record


def pick_version(workflow_id: str, version: int | None,
                 rows: Sequence[tuple[Any, Any]]) -> Any:
    """The spec of ``version`` among ``rows`` (``(version, spec)``, newest first; None: the
    newest), or ``FileNotFoundError`` naming the versions there are."""
    if not rows:
        raise FileNotFoundError(f"no workflow file or stored workflow named {workflow_id!r}")
    if version is None:
        return rows[0][1]
    for number, spec in rows:
        if int(number) == version:
            return spec
    known = ", ".join(str(int(n)) for n, _ in reversed(rows))
    raise FileNotFoundError(f"stored workflow {workflow_id!r} has no version {version} "
                            f"(versions: {known})")
