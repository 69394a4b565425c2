"""Who did what: the audit log as a DataFrame, stored workflow versions, deleting a run."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from fm_lab.engine.api import _LIVE
from fm_lab.engine.locking import unlock_run
from fm_lab.identity import current_roles, current_user
from fm_lab.store.audit import RUN_DELETE, AuditChainError, audit_frame, entry
from fm_lab.store.audit import verify as chain_problems
from fm_lab.store.default import default_store
from fm_lab.store.ids import validate_run_id
from fm_lab.store.journal import RunLockedError
from fm_lab.tracing.query import as_utc

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.base import RunStore


def audit(
    run_id: str | None = None,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: str | dt.datetime | None = None,
    limit: int | None = 1000,
    verify: bool = False,
    store: RunStore | None = None,
) -> pd.DataFrame:
    """The audit log, oldest first (the order the actions were logged): ``seq, acted_at,
    actor, action, run_id, path, before, after, prev_hash, hash``. Actions: ``run.start``,
    ``run.resume`` (an answer, with its ``path``, or a run continued), ``run.cancel``,
    ``run.delete``, ``suspension.refused`` (an answer by someone not assigned) and
    ``suspension.expire``. Filters: ``run_id``, ``actor``, ``action``, ``since``; ``limit``
    keeps the newest entries (None: all).

    ``verify=True`` first checks the whole log's hash chain and raises
    :class:`~fm_lab.store.audit.AuditChainError` naming each row that was edited, removed or
    inserted behind fm_lab's back.

    >>> fm_lab.audit(run_id, verify=True)[["acted_at", "actor", "action", "path"]]  # doctest: +SKIP
    """
    store = store or default_store()
    store.recover_journals()  # runs a dead process started are logged when stored
    if verify:
        problems = chain_problems(store.audit_rows())
        if problems:
            raise AuditChainError(
                f"the audit log of {store.path} was changed: {'; '.join(problems)}")
    return audit_frame(store.audit_rows(run_id, actor, action, as_utc(since), limit))


def workflows(workflow_id: str | None = None, store: RunStore | None = None) -> pd.DataFrame:
    """Stored workflow versions, newest first: ``workflow_id, version, hash, name, saved_by,
    created_at``. A version is stored by the first run of its content; ``saved_by`` is who
    started that run. ``runs()`` shows each run's ``workflow_hash`` and ``started_by``."""
    return (store or default_store()).workflows(workflow_id)


def delete_run(run_id: str, store: RunStore | None = None) -> list[str]:
    """Delete a run that no process is running, with its child runs, node results, spans,
    suspensions and journaled steps, in one transaction logged as ``run.delete``; return
    the deleted run ids. A live run is refused (cancel it first), and so is a child run
    (delete its top-level run). Stored workflow versions are kept."""
    validate_run_id(run_id)
    store = store or default_store()
    if any(live == run_id or live.startswith(run_id + ".") for live in _LIVE):
        raise RunLockedError(f"run {run_id} is running in this process; cancel it before "
                             "deleting it (nothing was deleted)")
    user = current_user()
    try:
        journal = store.open_journal(run_id)
    except RunLockedError:
        raise RunLockedError(f"run {run_id} is being run by another process; cancel it "
                             "before deleting it (nothing was deleted)") from None
    deleted = False
    try:
        if journal is not None:  # records a dead process left: stored, then deleted too
            store.adopt_journal(run_id, journal, force=True)
        snapshot = store.load_run(run_id)
        if snapshot.parent_run_id is not None:
            raise ValueError(f"run {run_id} is a child run of {snapshot.parent_run_id}; "
                             "delete that run instead (nothing was deleted)")
        children = [child for child in store.child_runs(run_id)  # a LIKE there reads "_"
                    if child.startswith(run_id + ".")]                # as any character
        if any(store.run_is_live(child) for child in children):
            raise RunLockedError(f"a child run of {run_id} is being run by another process; "
                                 "nothing was deleted")
        ids = store.delete_run(run_id, entry(RUN_DELETE, user, run_id=run_id, before={
            "status": snapshot.status, "workflow_id": snapshot.workflow.id,
            "child_runs": len(children)}))
        deleted = True
    finally:
        unlock_run(journal, stored=deleted)
    store.take_cancel_request(run_id)  # a stale request must not cancel a new run of this id
    return ids


__all__ = ["audit", "delete_run", "workflows"]


def store_settings(store: RunStore | None = None) -> dict[str, Any]:
    """The store's settings, read fresh: ``policy.allow`` (module patterns restricted runs
    may import, beside ``FM_LAB_ALLOW``), ``policy.http_allow`` (hosts and networks their
    ``http`` nodes may reach, beside ``FM_LAB_HTTP_ALLOW``) and ``policy.default``."""
    return (store or default_store()).settings(fresh=True)


def set_store_setting(key: str, value: Any, store: RunStore | None = None) -> Any:
    """Set one store setting for everyone on the store (``value=None`` removes it) and
    return the value it had; logged as ``store.setting`` in the audit log. Lists take a
    list of strings or one comma-separated string. On a shared store (PostgreSQL) only a
    user with the ``admin`` role (``FM_LAB_ROLES``) may change settings; the server's grants
    on ``store_settings`` are what really guards them (see the README's Security model).

    >>> fm_lab.set_store_setting("policy.allow", ["mypkg.*"])  # doctest: +SKIP
    """
    from fm_lab.store.base import SHARED, has
    from fm_lab.store.settings import ADMIN_ROLE, SettingError, check_setting

    store = store or default_store()
    checked = check_setting(key, value)
    user = current_user()
    if has(store, SHARED) and ADMIN_ROLE not in current_roles():
        raise SettingError(f"{user} may not change {store.path}'s settings: it needs the "
                           f"{ADMIN_ROLE!r} role (FM_LAB_ROLES); nothing was changed")
    return store.set_setting(key, checked, user)
