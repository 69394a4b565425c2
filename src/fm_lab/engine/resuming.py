"""Checks a resume request before anything changes: which suspension, and is the data valid."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from fm_lab.engine.errors import ResumeError, ResumeNotAllowedError, ResumeValidationError
from fm_lab.identity import describe_assignment, may_answer
from fm_lab.store.audit import SUSPENSION_REFUSED, entry
from fm_lab.store.codec import loads

if TYPE_CHECKING:
    from fm_lab.store.base import RunStore


def resume_target(
    store: RunStore, status: str, run_id: str, label: str | None, node: str | None,
    path_id: str | None,
) -> dict[str, Any]:
    """The one pending suspension (of the run or its child runs) the request names."""
    if status != "suspended":
        raise ResumeError(f"run {run_id} is {status}, not suspended: there is nothing to resume")
    rows = store.pending_rows(run_id, with_children=True)
    matches = [
        r
        for r in rows
        if (label is None or r["label"] == label)
        and (node is None or r["node_id"] == node)
        and (path_id is None or r["path_id"] == path_id)
    ]
    waiting = ", ".join(f"{r['path_id']} (label {r['label']!r})" for r in rows) or "nothing"
    if not matches:
        wanted = ", ".join(
            f"{key}={value!r}"
            for key, value in (("label", label), ("node", node), ("path_id", path_id))
            if value
        )
        raise ResumeError(
            f"run {run_id} has no pending suspension with {wanted or 'that data'};"
            f" waiting: {waiting}"
        )
    if len(matches) > 1:
        choices = ", ".join(m["path_id"] if m["run_id"] == run_id
                            else f"{m['path_id']} in child run {m['run_id']}" for m in matches)
        raise ResumeError(f"{len(matches)} suspensions of run {run_id} match; name one with "
                          f"path_id= (a child run's by resuming that run id): {choices}")
    return {str(key): value for key, value in matches[0].items()}


def check_answerer(store: RunStore, target: dict[str, Any], user: str,
                   roles: frozenset[str]) -> None:
    """Raise :class:`ResumeNotAllowedError` (and log the refusal) unless ``user`` holding
    ``roles`` may answer the suspension ``target``: assigned by name or role, or unassigned."""
    assignees: list[str] = loads(target.get("assignees")) or []
    wanted: list[str] = loads(target.get("roles")) or []
    if may_answer(assignees, wanted, user, roles):
        return
    store.append_audit([entry(SUSPENSION_REFUSED, user, run_id=target["run_id"],
                              path=target["path_id"],
                              after={"assignees": assignees, "roles": wanted})])
    raise ResumeNotAllowedError(
        f"{user} may not answer {target['path_id']} of run {target['run_id']}: it waits for "
        f"{describe_assignment(assignees, wanted)}; the run is unchanged")


def check_resume_data(target: dict[str, Any], data: Any) -> None:
    """Raise :class:`ResumeValidationError` listing every problem of ``data``."""
    schema = loads(target.get("resume_schema"))
    if not schema:
        return
    from fm_lab.engine.plan import schema_issues
    from fm_lab.spec.schemas import Validator

    validator = Validator(schema)
    issues = schema_issues(validator, data, "data")
    if issues:
        raise ResumeValidationError(
            f"resume data for {target['path_id']} of run {target['run_id']} is invalid; "
            "the run is unchanged:",
            issues,
        )


def expired_resumes(store: RunStore, run_id: str, resume: dict[str, Any]) -> dict[str, Any]:
    """Resume data for suspensions whose timeout has passed: their default, or a failure."""
    from fm_lab.engine.context import EXPIRED

    now = dt.datetime.now(dt.UTC)
    found: dict[str, Any] = {}
    for row in store.pending_rows(run_id):
        expires = row["expires_at"]
        if row["path_id"] in resume or expires is None or expires > now:
            continue
        found[row["path_id"]] = (
            loads(row["default_data"]) if row["on_timeout"] == "default" else {EXPIRED: True}
        )
    return found
