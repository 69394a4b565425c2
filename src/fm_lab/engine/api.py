"""The user-facing entry points: connect, run, resume, runs, validate."""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fm_lab.engine.locking import RESUME_WAIT_S, lock_run, unlock_run
from fm_lab.engine.plan import Plan
from fm_lab.engine.run import Run
from fm_lab.engine.runner import Runner
from fm_lab.engine.session import RunSession
from fm_lab.engine.watchers import finished, watching, with_watchers
from fm_lab.identity import current_roles, current_user, may_answer
from fm_lab.progress import listener
from fm_lab.security.policy import Policy, resolve_policy, using_policy
from fm_lab.spec.models import Workflow
from fm_lab.store.audit import RUN_CANCEL, RUN_RESUME, entry
from fm_lab.store.base import RunSnapshot, RunStore
from fm_lab.store.default import connect, default_store, home
from fm_lab.store.duckdb_store import Store
from fm_lab.store.ids import InvalidIdError, RunIdInUseError, validate_run_id
from fm_lab.store.journal import JournalDamagedError, RunJournal, RunLockedError
from fm_lab.sync import run_sync

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import pandas as pd

    from fm_lab.engine.executors import RunHandle
    from fm_lab.nodes.registry import NodeRegistry

T = TypeVar("T")


def new_run_id() -> str:
    """A sortable, unique run id."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


def load_workflow(workflow: Workflow | str | Path | dict[str, Any]) -> Workflow:
    """Accept a Workflow, a path to YAML/JSON, or a dict."""
    if isinstance(workflow, Workflow):
        return workflow
    if isinstance(workflow, dict):
        return Workflow.from_dict(workflow)
    return Workflow.from_file(workflow)


def validate(
    workflow: Workflow | str | Path | dict[str, Any], registry: NodeRegistry | None = None,
    policy: Policy | str | None = None,
) -> Workflow:
    """Load and validate; raises :class:`WorkflowValidationError` listing every problem.
    ``policy`` (``"trusted"`` | ``"restricted"``; default: the one in force) decides which
    functions, tools and agents the workflow may name (see :mod:`fm_lab.security`)."""
    with using_policy(None if policy is None else resolve_policy(policy)):
        return load_workflow(workflow).validate(registry)


async def arun(
    workflow: Workflow | str | Path | dict[str, Any],
    inputs: dict[str, Any] | None = None,
    *,
    run_id: str | None = None,
    store: RunStore | None = None,
    request_context: dict[str, Any] | None = None,
    registry: NodeRegistry | None = None,
    parent_run_id: str | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    cache: bool = False,
    cache_from: str | None = None,
    recompute: Iterable[str] = (),
    progress: bool | None = None,
    policy: Policy | str | None = None,
    executor: str | None = None,
) -> Run:
    """Run a workflow to its end or its first suspension (async). Invalid workflows or inputs
    raise before anything is stored. ``on_event`` hears of the run starting and ending and of
    every node starting and finishing (``{"type": "node", "path", "node_id", "status",
    "duration_ms", "error", "run_id"}``); it may be called from a worker thread.

    With ``cache=True`` a node whose type, rendered config, upstream outputs and code are
    those of a stored successful execution of this workflow reuses its result (status
    ``cached`` in events, ``cached_from`` in ``nodes_df()``); ``cache_from`` adds a run's
    results even if it ran without the cache, and ``recompute`` names nodes that always run.
    Nodes with ``cache: false`` and side-effect types (http, approval, sleep, ...) always run.
    ``progress`` draws a progress bar (default: in notebooks only). The run records who
    started it (:func:`fm_lab.identity.current_user`: ``started_by`` in ``runs()``, and
    ``run.start`` in the audit log).

    ``policy``: ``"trusted"`` or ``"restricted"`` (default: the enclosing run's, else
    ``$FM_LAB_POLICY``, else the store's default; see :func:`fm_lab.security.resolve_policy`).
    Under ``restricted`` a workflow naming a function, tool or agent the policy does not allow
    is invalid, and its ``http`` nodes may not reach internal addresses.

    ``executor``: ``"local"`` (default: this process) or ``"temporal"`` (a Temporal cluster,
    ``$FM_LAB_TEMPORAL``, or ``"temporal://HOST:PORT/NAMESPACE?task_queue=Q"``; see
    :mod:`fm_lab.temporal`): the run executes on its workers and this call waits until it
    finishes or suspends."""
    from fm_lab.nodes.registry import default_registry

    if executor not in (None, "local"):
        _remote_only(executor, parent_run_id=parent_run_id, on_event=on_event, cache=cache,
                     cache_from=cache_from, recompute=tuple(recompute))
        handle = await asubmit(workflow, inputs, executor=executor, run_id=run_id,
                               store=store, request_context=request_context,
                               registry=registry, policy=policy)
        return await handle.wait()
    user = current_user()  # an invalid identity fails before anything is stored
    registry = registry or default_registry()
    wf = load_workflow(workflow)
    store = store or default_store()
    chosen = resolve_policy(policy, store=store)
    with using_policy(chosen):
        plan = Plan.cached(wf, registry)
        _preload_models(plan, wf)
    prepared = plan.prepare_inputs(dict(inputs or {}), plain=parent_run_id is None)
    on_event = listener(len(plan.nodes), wf.id,
                        False if parent_run_id is not None else progress, on_event)
    watchers = [] if parent_run_id is not None else watching(wf.id)
    on_event = with_watchers(on_event, watchers, store)
    node_cache = None
    if cache or cache_from is not None:
        from fm_lab.engine.cache import NodeCache

        source = store.load_run(cache_from) if cache_from is not None else None
        node_cache = NodeCache.load(store, plan, source=source, recompute=recompute)
    if run_id is None:
        run_id = new_run_id()
    else:
        _check_new_run_id(store, validate_run_id(run_id))
    journal = store.open_journal(run_id, new=True)
    try:
        session = RunSession(
            store=store,
            run_id=run_id,
            journal=journal,
            registry=registry,
            request_context=request_context,
            workflow_id=wf.id,
            trace=_trace_parent(parent_run_id),
            on_event=on_event,
            cache=node_cache,
            policy=chosen,
        )
        start = Store.start_record(run_id, wf, prepared, parent_run_id)
        start["trace_id"] = session.trace_id
        start["by"] = user
        start["policy"] = chosen.mode
        runner = Runner(plan, session, prepared, start=start)
    except BaseException:
        if journal is not None:
            journal.close(remove=True)  # nothing was written: leave no trace of this run
        raise
    result = await _drive(runner, journal)
    finished(watchers, result)
    return result


def _remote_only(executor: str, **given: Any) -> None:
    """Refuse what a run on a remote executor cannot do (yet), by name."""
    unsupported = [name for name, value in given.items() if value not in (None, False, ())]
    if unsupported:
        raise ValueError(f"executor={executor!r} does not support "
                         f"{', '.join(unsupported)}: run it locally")


async def asubmit(
    workflow: Workflow | str | Path | dict[str, Any],
    inputs: dict[str, Any] | None = None,
    *,
    executor: str = "temporal",
    run_id: str | None = None,
    store: RunStore | None = None,
    request_context: dict[str, Any] | None = None,
    registry: NodeRegistry | None = None,
    policy: Policy | str | None = None,
) -> RunHandle:
    """Start a run and return at once with a handle (``handle.run_id``, ``await
    handle.wait()``); invalid workflows or inputs raise before anything is stored.
    ``executor``: ``"temporal"`` (or its URL, see :func:`arun`) or ``"local"`` (a task on
    this event loop)."""
    from fm_lab.engine.executors import executor_for
    from fm_lab.nodes.registry import default_registry

    current_user()  # an invalid identity fails before anything is stored
    store = store or default_store()
    registry = registry or default_registry()
    if executor == "local":
        return _LocalHandle.start(workflow, inputs, run_id=run_id, store=store,
                                  request_context=request_context, registry=registry,
                                  policy=policy)
    if run_id is not None:
        _check_new_run_id(store, validate_run_id(run_id))
    return await executor_for(executor).submit(
        executor, load_workflow(workflow), dict(inputs or {}), run_id=run_id, store=store,
        registry=registry, policy=policy, request_context=request_context)


def submit(workflow: Workflow | str | Path | dict[str, Any],
           inputs: dict[str, Any] | None = None, **kwargs: Any) -> SyncHandle:
    """Synchronous :func:`asubmit`: ``handle = fm_lab.submit(wf, inputs,
    executor="temporal")``, later ``handle.result()`` (the run once finished or suspended)."""
    return SyncHandle(run_sync(asubmit(workflow, inputs, **kwargs)))


class SyncHandle:
    """A submitted run for synchronous code: ``run_id`` and :meth:`result`."""

    def __init__(self, handle: RunHandle) -> None:
        self.handle = handle
        self.run_id = handle.run_id

    def result(self) -> Run:
        """Wait until the run has finished or suspended; return it."""
        return run_sync(self.handle.wait())

    def __repr__(self) -> str:
        return f"<submitted run {self.run_id}>"


class _LocalHandle:
    """A run started on this process's loop thread (``executor="local"``)."""

    def __init__(self, run_id: str, future: Any) -> None:
        self.run_id = run_id
        self._future = future

    @classmethod
    def start(cls, workflow: Workflow | str | Path | dict[str, Any],
              inputs: dict[str, Any] | None, *, run_id: str | None,
              **kwargs: Any) -> _LocalHandle:
        import concurrent.futures
        import threading

        run_id = run_id or new_run_id()
        future: concurrent.futures.Future[Run] = concurrent.futures.Future()

        def work() -> None:
            try:
                future.set_result(run(workflow, inputs, run_id=run_id, progress=False,
                                      **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=work, name=f"fm_lab-run-{run_id}", daemon=True).start()
        return cls(run_id, future)

    async def wait(self) -> Run:
        import asyncio

        return await asyncio.wrap_future(self._future)


async def aresume(
    run_id: str,
    data: Any = None,
    *,
    label: str | None = None,
    node: str | None = None,
    path_id: str | None = None,
    store: RunStore | None = None,
    request_context: dict[str, Any] | None = None,
    registry: NodeRegistry | None = None,
    continue_parent: bool = True,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    progress: bool | None = None,
    force: bool = False,
    wait_s: float = RESUME_WAIT_S,
    policy: Policy | str | None = None,
) -> Run:
    """Continue a run: after a crash or failure (committed nodes are not re-run), or, with
    ``data`` and one of ``label``/``node``/``path_id``, a suspended path. ``data`` is
    validated against the node's resume schema *before* anything changes: invalid data raises
    :class:`ResumeValidationError` and the run stays suspended and unchanged. Resuming one of
    several pending paths leaves the others pending. A child run resumed on its own lets its
    suspended parent continue (``continue_parent=False`` to leave the parent waiting).

    Resumes of one run are serialised across processes: a resume waits up to ``wait_s``
    while another process runs the run, then reads the run as that process left it (an answer
    to a suspension someone else already answered is refused). A run whose journal is damaged
    or missing raises :class:`JournalDamagedError` unless ``force=True``. ``policy``: as for
    :func:`arun`; a run started ``restricted`` resumes ``restricted`` unless told otherwise.

    A suspension assigned to users or roles (``assignees``/``roles`` of approval, user_input
    and wait_for_event) is answered only by them: anyone else gets
    :class:`ResumeNotAllowedError` and the run is unchanged. Who answered is recorded
    (``resumed_by`` of the suspension, ``run.resume`` in the audit log).
    """
    from fm_lab.nodes.registry import default_registry

    validate_run_id(run_id)
    user = current_user()
    registry = registry or default_registry()
    store = store or default_store()
    from fm_lab.engine.executors import remote_owner

    if (owner := remote_owner(store, run_id)) is not None:
        return await _resume_remote(owner, run_id, data, label, node, path_id, store, user)
    journal = await lock_run(store, run_id, wait_s)
    try:
        if journal is not None:
            for note in store.adopt_journal(run_id, journal, force=force):
                logging.getLogger("fm_lab").warning(note)
        snapshot = store.load_run(run_id)
        common: dict[str, Any] = {
            "store": store, "request_context": request_context, "registry": registry,
        }
        resume, answered_by, expired = await _resume_data(
            snapshot, data, label, node, path_id, common, user)
    except BaseException:
        unlock_run(journal, stored=False)
        raise
    composite_waiting = any(
        r["status"] == "suspended" and not r.get("leaf", True) for r in snapshot.nodes.values()
    )
    if snapshot.status in ("succeeded", "cancelled") or (
        snapshot.status == "suspended" and not resume and not composite_waiting
    ):
        unlock_run(journal, stored=True)
        return Run.load(run_id, store)
    chosen = resolve_policy(policy, store=store, stored=snapshot.policy)
    try:
        with using_policy(chosen):
            plan = Plan(snapshot.workflow, registry)
    except BaseException:
        unlock_run(journal, stored=True)
        raise
    on_event = listener(len(plan.nodes), snapshot.workflow.id,
                        False if snapshot.parent_run_id is not None else progress, on_event)
    watchers = [] if snapshot.parent_run_id is not None else watching(snapshot.workflow.id)
    on_event = with_watchers(on_event, watchers, store)
    answered = any(path not in expired for path in answered_by)
    continued = [] if answered else [entry(RUN_RESUME, user, run_id=run_id, before={
        "status": snapshot.status}, after={"status": "running"})]
    try:
        store.claim_run(run_id, continued)
    except BaseException:
        unlock_run(journal, stored=False)
        raise
    session = RunSession(
        store=store,
        run_id=run_id,
        journal=journal,
        journal_seq=snapshot.journal_seq,
        registry=registry,
        request_context=request_context,
        committed=snapshot.nodes,
        steps=snapshot.steps,
        resume=resume,
        workflow_id=snapshot.workflow.id,
        trace=_resumed_trace(snapshot.trace_id, snapshot.parent_run_id),
        on_event=on_event,
        answered_by=answered_by,
        expired=expired,
        policy=chosen,
    )
    result = await _drive(Runner(plan, session, snapshot.inputs), journal)
    finished(watchers, result)
    parent = snapshot.parent_run_id
    if (continue_parent and parent is not None and parent not in _LIVE
            and result.status != "suspended" and store.run_status(parent) == "suspended"):
        # resumed directly (not by the parent's subflow node): let the parent pick it up
        await aresume(parent, **common)
    return result


async def _resume_remote(owner: str, run_id: str, data: Any, label: str | None,
                         node: str | None, path_id: str | None, store: RunStore,
                         user: str) -> Run:
    """Answer a suspension of a run another executor owns: checked here (who answers, the
    data), delivered there; returns the run once it finished or suspended again. Without an
    answer there is nothing to do: the executor continues crashed runs by itself."""
    from fm_lab.engine.executors import executor_for, remote_owner
    from fm_lab.engine.resuming import check_answerer, check_resume_data, resume_target

    if data is not None or label is not None or node is not None or path_id is not None:
        target = resume_target(store, store.run_status(run_id), run_id, label, node, path_id)
        check_answerer(store, target, user, current_roles())
        check_resume_data(target, data)
        target_owner = remote_owner(store, target["run_id"]) or owner
        await executor_for(target_owner).resume(target_owner, target["run_id"],
                                                target["path_id"], data, user, store)
        if target["run_id"] != run_id:  # a child run's answer: the parent goes on with it
            await executor_for(owner).settled(owner, run_id)
    return Run.load(run_id, store)


async def _resume_data(
    snapshot: RunSnapshot,
    data: Any,
    label: str | None,
    node: str | None,
    path_id: str | None,
    common: dict[str, Any],
    user: str,
) -> tuple[dict[str, Any], dict[str, str], set[str]]:
    """The resume data the run continues with (the caller holds the run's lock): answers
    stored before, the new answer (checked first: who gives it, then the data; one for a
    child run is delivered to it), and the defaults of expired waits. Also who gave each new
    answer (``user``) and which of them are expired waits."""
    from fm_lab.engine.resuming import (
        check_answerer,
        check_resume_data,
        expired_resumes,
        resume_target,
    )

    store: RunStore = common["store"]
    run_id = snapshot.run_id
    resume = dict(snapshot.resumes)
    answered_by: dict[str, str] = {}
    if data is not None or label is not None or node is not None or path_id is not None:
        target = resume_target(store, snapshot.status, run_id, label, node, path_id)
        check_answerer(store, target, user, current_roles())
        check_resume_data(target, data)
        if target["run_id"] != run_id:  # the suspension is in a child run: resume it first
            await aresume(target["run_id"], data, path_id=target["path_id"],
                          continue_parent=False, **common)
        else:
            resume[target["path_id"]] = data
            answered_by[target["path_id"]] = user
    expired: dict[str, Any] = {}
    if snapshot.status == "suspended":
        expired = expired_resumes(store, run_id, resume)
        resume.update(expired)
        answered_by.update(dict.fromkeys(expired, user))
    return resume, answered_by, set(expired)


def _preload_models(plan: Plan, workflow: Workflow) -> None:
    """Start importing litellm in the background when a node may ask a model that is not an
    offline one (those answer without litellm)."""
    from fm_lab.llm.offline_route import direct

    chains = [node_type.models(workflow.nodes[node_id].config)
              for node_id, node_type in plan.types.items() if node_type.calls_models]
    if any(not direct(chain) for chain in chains):
        from fm_lab.llm.client import preload

        preload()


def _check_new_run_id(store: RunStore, run_id: str) -> None:
    """A run id given by the caller must not name an existing run (that would mix two runs)."""
    from fm_lab.store.errors import RunNotFoundError

    if store.run_is_live(run_id):
        raise RunIdInUseError(f"run id {run_id!r} is in use by a live run")
    store.recover_journals(run_id)
    try:
        status = store.run_status(run_id)
    except RunNotFoundError:
        return
    raise RunIdInUseError(f"run id {run_id!r} already names a {status} run; resume it "
                          "with fm_lab.resume() or choose another id")


def _resumed_trace(trace_id: str | None, parent_run_id: str | None
                   ) -> tuple[str, str | None] | None:
    """A resumed run keeps its trace; a child resumed by its parent's node nests under it."""
    parent = _trace_parent(parent_run_id)
    if trace_id is None:
        return parent
    return trace_id, parent[1] if parent else None


def _trace_parent(parent_run_id: str | None) -> tuple[str, str | None] | None:
    """A child run joins its parent's trace, under the span that started it; a top-level run
    joins the linked trace of a batch item, if any (:func:`fm_lab.tracing.spans.linked_parent`)."""
    from fm_lab.tracing.spans import current, linked_parent

    if parent_run_id is None:
        return linked_parent()
    ctx = current()
    if ctx is None:
        return None
    return ctx.trace_id, ctx.span_id


_LIVE: dict[str, RunSession] = {}


async def _drive(runner: Runner, journal: RunJournal | None) -> Run:
    from fm_lab.timers import autostart

    session = runner.session
    autostart(session.store)  # a Jupyter kernel fires its stores' due waits by itself
    _LIVE[session.run_id] = session
    try:
        with using_policy(session.policy):
            await runner.execute()
    finally:
        _LIVE.pop(session.run_id, None)
        if journal is not None:
            journal.close(remove=runner.stored)
    return Run(
        session.run_id,
        session.store,
        workflow=runner.plan.workflow,
        status=runner.run_status,
        outputs=runner.outputs,
        error=runner.error,
        nodes=runner.results,
        state=runner.state,
        policy=session.policy.mode,
    )


def pending(run_id: str | None = None, store: RunStore | None = None,
            mine: bool = False) -> pd.DataFrame:
    """Every suspension waiting for data (run, node, label, path_id, payload, since,
    expires_at, ``payload_schema`` (the schema of the payload, None when none was declared)
    and who may answer: ``assignees`` and ``roles``, empty lists for anyone),
    across runs or for one run and its child runs. ``mine=True``: only what the current user
    (:func:`fm_lab.identity.current_user`, roles from ``FM_LAB_ROLES``) may answer.

    >>> fm_lab.pending(mine=True)  # doctest: +SKIP
    """
    import pandas as pd

    store = store or default_store()
    store.recover_journals()
    from fm_lab.store.codec import loads

    frame = store.pending(run_id, with_children=True) if run_id else store.pending()
    frame["payload"] = frame["payload"].map(loads)
    frame["payload_schema"] = frame["payload_schema"].map(  # NULL: none declared
        lambda text: loads(text) if isinstance(text, str) else None)
    for column in ("assignees", "roles"):
        frame[column] = frame[column].map(  # NULL (anyone) comes as None or NaN
            lambda text: loads(text) if isinstance(text, str) else [])
    if mine:
        user, roles = current_user(), current_roles()
        frame = frame.loc[pd.Series(
            [may_answer(names, wanted, user, roles)
             for names, wanted in zip(frame["assignees"], frame["roles"], strict=True)],
            index=frame.index, dtype=bool)].reset_index(drop=True)
    return frame.drop(columns=["resume_schema", "default_data", "on_timeout"])


async def asignal(run_id: str, name: str, data: Any = None, **kwargs: Any) -> Run:
    """Deliver event ``name`` to a run waiting in a ``wait_for_event`` node."""
    return await aresume(run_id, data, label=name, **kwargs)


def signal(run_id: str, name: str, data: Any = None, **kwargs: Any) -> Run:
    """Synchronous :func:`asignal`."""
    return run_sync(asignal(run_id, name, data, **kwargs))


def cancel(run_id: str, store: RunStore | None = None, wait_s: float = 5.0) -> None:
    """Cancel a run: a live one stops at once (completed work is kept, status ``cancelled``);
    a suspended or failed one is marked cancelled; one running in another process is asked to
    stop at its next check (this waits up to ``wait_s`` for it, and marks it cancelled if it
    suspended or failed meanwhile). The cancel is logged with who asked (``run.cancel``)."""
    session = _LIVE.get(validate_run_id(run_id))
    user = current_user()
    if session is None:
        from fm_lab.engine.executors import executor_for, remote_owner

        store = store or default_store()
        if (owner := remote_owner(store, run_id)) is not None:
            store.append_audit([entry(RUN_CANCEL, user, run_id=run_id, before={
                "status": store.run_status(run_id)}, after={"status": "cancel requested"})])
            run_sync(executor_for(owner).cancel(owner, run_id, wait_s))
            return
    if session is not None:
        session.cancel()
        session.store.append_audit([entry(RUN_CANCEL, user, run_id=run_id, before={
            "status": "running"}, after={"status": "cancelled"})])
        return
    store = store or default_store()
    deadline = time.monotonic() + wait_s
    while True:
        try:
            journal = store.open_journal(run_id)
            break
        except RunLockedError:  # running in another process: ask it to stop
            store.request_cancel(run_id)
            if time.monotonic() >= deadline:  # it stops at its next check
                store.append_audit([entry(RUN_CANCEL, user, run_id=run_id, before={
                    "status": "running"}, after={"status": "cancel requested"})])
                return
            time.sleep(0.05)
    stored = False
    try:
        if journal is not None:  # nothing will re-run: a damaged journal's intact part is kept
            store.adopt_journal(run_id, journal, force=True)
        stored = True
        store.take_cancel_request(run_id)  # a request of ours no longer needed
        status = store.run_status(run_id)
        if status in ("suspended", "failed", "running"):  # running: it died
            store.set_status(run_id, "cancelled", [entry(
                RUN_CANCEL, user, run_id=run_id, before={"status": status},
                after={"status": "cancelled"})])
            for child in store.child_runs(run_id, ("suspended", "failed", "running")):
                if not store.run_is_live(child):
                    store.set_status(child, "cancelled")
    finally:
        unlock_run(journal, stored)


def recover(store: RunStore | None = None) -> list[Run]:
    """Resume every run left ``running`` by a process that died, and every suspended run whose
    wait has expired or whose sleep is due (:mod:`fm_lab.timers` does the latter on its own);
    live runs are left alone (their journals are locked by their process)."""
    from fm_lab.engine.executors import remote_owner
    from fm_lab.engine.wakeups import fire_due

    store = store or default_store()
    store.recover_journals()
    left = store.orphaned_runs()
    resumed = []
    for run_id in left:
        try:
            if store.run_is_live(run_id) or remote_owner(store, run_id) is not None:
                continue  # live here or elsewhere, or continued by its executor
            resumed.append(resume(run_id, store=store, wait_s=0.0))
        except RunLockedError:
            continue  # it came alive in the meantime
        except InvalidIdError:
            continue  # stored before ids were checked: it cannot name its journal
        except JournalDamagedError as exc:  # needs a person: resume(run_id, force=True)
            logging.getLogger("fm_lab").warning("%s", exc)
    return resumed + fire_due(store)[0]


def run(
    workflow: Workflow | str | Path | dict[str, Any],
    inputs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Run:
    """Run a workflow and wait for it; works in scripts and inside Jupyter's running loop.

    Takes the same arguments as :func:`arun`.
    """
    return run_sync(arun(workflow, inputs, **kwargs))


def resume(run_id: str, data: Any = None, **kwargs: Any) -> Run:
    """Synchronous :func:`aresume`: ``fm_lab.resume(run_id, {"approved": True}, label="ok")``."""
    return run_sync(aresume(run_id, data, **kwargs))


async def arerun(
    source: Run | str,
    *nodes: str,
    workflow: Workflow | str | Path | dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    store: RunStore | None = None,
    **kwargs: Any,
) -> Run:
    """Run again like a notebook cell: ``nodes`` and everything downstream of them are
    recomputed; every other node whose config and inputs are unchanged reuses its result from
    ``source`` (or from earlier cached runs). Pass an edited ``workflow`` or new ``inputs``:
    only what they change (and what depends on it) runs. Returns the new run."""
    if isinstance(source, Run):
        store = store or source.store
        source_id = source.run_id
    else:
        store = store or default_store()
        source_id = source
    snapshot = store.load_run(source_id)
    wf = snapshot.workflow if workflow is None else load_workflow(workflow)
    unknown = [n for n in nodes if n not in wf.nodes]
    if unknown:
        raise KeyError(f"workflow {wf.id!r} has no node {', '.join(map(repr, unknown))}; "
                       f"nodes: {', '.join(wf.nodes)}")
    return await arun(wf, snapshot.inputs if inputs is None else inputs, store=store,
                      cache=True, cache_from=source_id, recompute=wf.downstream(nodes),
                      **kwargs)


def rerun(source: Run | str, *nodes: str, **kwargs: Any) -> Run:
    """Synchronous :func:`arerun`."""
    return run_sync(arerun(source, *nodes, **kwargs))


def get_run(run_id: str, store: RunStore | None = None) -> Run:
    """A stored run by id."""
    return Run.load(validate_run_id(run_id), store or default_store())


def runs(
    limit: int | None = 100, status: str | None = None, store: RunStore | None = None
) -> pd.DataFrame:
    """Recent runs as a DataFrame (newest first)."""
    return (store or default_store()).runs(limit=limit, status=status)


__all__ = [
    "arerun",
    "aresume",
    "arun",
    "asignal",
    "asubmit",
    "cancel",
    "connect",
    "default_store",
    "get_run",
    "home",
    "load_workflow",
    "new_run_id",
    "pending",
    "recover",
    "rerun",
    "resume",
    "run",
    "runs",
    "signal",
    "submit",
    "validate",
]
