"""Time travel: fork a stored run at any node (``loop[3]/approve`` inside a foreach item's
sub-workflow too), with an edited output, state or inputs, or an edited workflow.

A fork is a new run linked to its parent (``forked_from``, ``forked_at_node``). Its journal
starts with copies of the parent's committed results for every path the edit cannot reach
(marked ``cached_from`` the parent: nothing re-executes, whatever the node type), then the
edited output at the fork node; the fork is then resumed like a run after a crash, so only the
fork node (without an edited output), what depends on it and the composite nodes around it
run. State edits are a ``@fork`` record at the fork node's graph, replayed after the copies.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fm_lab.engine.api import _check_new_run_id, load_workflow, new_run_id
from fm_lab.engine.bodies import resolve_workflow
from fm_lab.engine.plan import Plan
from fm_lab.engine.run import Run
from fm_lab.identity import current_user
from fm_lab.security.policy import resolve_policy, using_policy
from fm_lab.store import codec
from fm_lab.store.default import default_store
from fm_lab.store.duckdb_store import Store
from fm_lab.store.ids import validate_run_id
from fm_lab.sync import run_sync
from fm_lab.tracing.spans import new_trace_id

if TYPE_CHECKING:
    from pathlib import Path

    from fm_lab.spec.models import Node, Workflow
    from fm_lab.store.base import RunSnapshot, RunStore
    from fm_lab.store.records import JournalRecord, NodeRecord, RunEndRecord, StoredNode

FORK_STATE = "@fork"
"""The path (under the fork node's graph prefix) of the record holding a fork's state edits."""
_UNSET: Any = object()
_SEPARATORS = ("/", "[", ".", "#")
_REUSABLE = ("succeeded", "skipped")


class ForkError(ValueError):
    """A fork cannot be made as asked (unknown node, invalid edit, live parent); nothing was
    stored and the parent is unchanged."""


@dataclass(frozen=True, slots=True)
class _Level:
    """One graph on the way to the fork node: its path prefix, its workflow, the node in it
    the fork path goes through and that node's path segment (``loop`` or ``loop[3]``)."""

    prefix: str
    workflow: Workflow
    node_id: str
    segment: str
    affected: frozenset[str]  # node ids of this graph the edit reaches (re-run)


@dataclass
class Fork:
    """A fork checked and ready to store: its workflow, inputs and first records, and the
    fork of a child run when the fork path goes through a ``subflow`` node (``sub/x``)."""

    parent: RunSnapshot
    at: str
    workflow: Workflow
    inputs: dict[str, Any]
    records: list[JournalRecord]
    child: tuple[str, Fork] | None = None  # (the subflow node's path, the child's fork)


async def afork(
    source: Run | str,
    at: str | None = None,
    *,
    output: Any = _UNSET,
    outputs: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    workflow: Workflow | str | Path | dict[str, Any] | None = None,
    store: RunStore | None = None,
    run_id: str | None = None,
    **kwargs: Any,
) -> Run:
    """Fork ``source`` at node path ``at`` (a node id, ``loop[3]``, ``loop[3]/approve``,
    ``sub/draft`` inside a subflow's child run): a new run that reuses the parent's
    committed results the edit cannot reach, takes ``output`` (or ``outputs={at: value}``)
    as the fork node's output instead of running it, merges ``state`` into the state the
    fork node sees and ``inputs`` into the run's inputs, optionally runs an edited
    ``workflow`` (changed nodes re-run too), and runs the rest. Every edit is checked before
    anything is stored. Other keyword arguments go to :func:`fm_lab.aresume` (``on_event``,
    ``progress``, ``registry``, ...)."""
    from fm_lab.engine.api import aresume
    from fm_lab.nodes.registry import default_registry

    parent, store = stopped_run(source, store)
    at, output = _fork_point(at, output, outputs)
    user = current_user()
    wf = parent.workflow if workflow is None else load_workflow(workflow)
    chosen = resolve_policy(kwargs.pop("policy", None), store=store, stored=parent.policy)
    with using_policy(chosen):
        planned = _prepare(store, parent, wf, kwargs.get("registry") or default_registry(),
                           at, output, state or {}, inputs or {})
    if run_id is not None:
        _check_new_run_id(store, validate_run_id(run_id))
    run_id = run_id or new_run_id()
    store_fork(store, planned, run_id, policy=chosen.mode, user=user)
    result = await aresume(run_id, store=store, **kwargs)
    result.forked_from, result.forked_at_node = parent.run_id, at
    return result


def _prepare(store: RunStore, parent: RunSnapshot, wf: Workflow, registry: Any, at: str,
             output: Any, state: dict[str, Any], inputs: dict[str, Any]) -> Fork:
    """Check the fork and build its first records (and its child run's, through a subflow)."""
    from fm_lab.engine.bodies import child_run_id
    from fm_lab.store.errors import RunNotFoundError

    plan = Plan(wf, registry)
    prepared = plan.prepare_inputs({**parent.inputs, **inputs}, plain=True)
    head, _, rest = at.partition("/")
    if rest and head in wf.nodes and wf.nodes[head].type == "subflow":
        try:
            child = stopped_run(child_run_id(parent.run_id, head), store)[0]
        except RunNotFoundError:
            raise ForkError(f"node {head!r} of run {parent.run_id} started no child run to "
                            f"fork at {rest!r}") from None
        inner = _prepare(store, child, child.workflow, registry, rest, output, state, {})
        records = _records(parent, _levels(store, parent, wf, head), head, _UNSET, {})
        return Fork(parent, at, wf, prepared, records, (head, inner))
    levels = _levels(store, parent, wf, at)
    if output is not _UNSET:
        _check_output(levels, at, output)
    records = _records(parent, levels, at, output, state)
    if state and len(levels) == 1:
        _check_state(plan, records, levels[0].node_id)
    return Fork(parent, at, wf, prepared, records)


def store_fork(store: RunStore, planned: Fork, run_id: str, *, policy: str, user: str,
               parent_run_id: str | None = None) -> None:
    """Store the fork (and its child run's) as a run that has not run yet: linked to its
    parent, its journal starting with the records it reuses; ``fm_lab.aresume`` runs it."""
    from fm_lab.engine.bodies import child_run_id

    start = Store.start_record(run_id, planned.workflow, planned.inputs, parent_run_id)
    start["trace_id"], start["by"], start["policy"] = new_trace_id(), user, policy
    start["forked_from"] = planned.parent.run_id
    if planned.at:
        start["forked_at_node"] = planned.at
    waiting: RunEndRecord = {  # until it runs: a process that dies here leaves it resumable
        "k": "run", "status": "failed", "outputs": None, "state": None, "ended": time.time(),
        "error": {"node": None, "kind": "system", "message": f"forked from run "
                  f"{planned.parent.run_id}; the rest has not run yet: "
                  f"fm_lab.resume({run_id!r}) runs it"}}
    journal: list[JournalRecord] = [start, *planned.records, waiting]
    for seq, record in enumerate(journal, 1):
        record["seq"] = seq
    store.ingest(run_id, journal)
    if planned.child is not None:  # the subflow node re-runs and resumes this child run
        path, inner = planned.child
        store_fork(store, inner, child_run_id(run_id, path), policy=policy, user=user,
                   parent_run_id=run_id)


def fork(source: Run | str, at: str | None = None, **kwargs: Any) -> Run:
    """Synchronous :func:`afork`: ``fm_lab.fork(run, "draft", output="a better draft")``."""
    return run_sync(afork(source, at, **kwargs))


def stopped_run(source: Run | str, store: RunStore | None) -> tuple[RunSnapshot, RunStore]:
    """The stored run ``source`` names (it must not be running) and its store."""
    if isinstance(source, Run):
        store = store or source.store
        run_id = source.run_id
    else:
        store = store or default_store()
        run_id = validate_run_id(source)
    store.recover_journals(run_id)  # left by a process that died: store it first
    snapshot = store.load_run(run_id)
    if store.run_is_live(run_id) or snapshot.status == "running":
        raise ForkError(f"run {run_id} is running; fork or replay it once it has stopped")
    return snapshot, store


def _fork_point(at: str | None, output: Any, outputs: dict[str, Any] | None) -> tuple[str, Any]:
    """The fork path and the edited output (``_UNSET``: the fork node runs again)."""
    if outputs:
        if output is not _UNSET or len(outputs) != 1 or (at is not None and at not in outputs):
            raise ForkError("a fork edits one node's output: give output=..., or outputs="
                            "{at: value} (fork the fork to edit another node)")
        at, output = next(iter(outputs.items()))
    if not at:
        raise ForkError("name the node to fork at: at='node' (or 'loop[3]/node')")
    return at, output


def _head(segment: str) -> str:
    """The node id a path segment starts with (``loop`` of ``loop[3]``, ``par`` of ``par.a``)."""
    return re.split(r"[\[.#]", segment, maxsplit=1)[0]


def _levels(store: RunStore, parent: RunSnapshot, wf: Workflow, at: str) -> list[_Level]:
    """The graphs from the run's down to the fork node's, checking each step of ``at``."""
    segments = at.split("/")
    levels: list[_Level] = []
    prefix = ""
    for depth, segment in enumerate(segments):
        node_id = _head(segment)
        if node_id not in wf.nodes:
            where = f"the sub-workflow at {prefix[:-1]!r}" if prefix else f"workflow {wf.id!r}"
            raise ForkError(f"{where} has no node {node_id!r}; nodes: {', '.join(wf.nodes)}")
        changed = _changed(parent.workflow, wf) if depth == 0 else []
        affected = frozenset(wf.downstream([node_id, *changed]))
        levels.append(_Level(prefix, wf, node_id, segment, affected))
        if depth < len(segments) - 1:
            wf = _body_workflow(store, wf.nodes[node_id], segment[len(node_id):])
            prefix += segment + "/"
    inside = prefix[:-1] or at  # the item or branch holding the fork node, or the node itself
    if inside != levels[0].node_id and at not in parent.nodes and inside not in parent.nodes:
        paths = sorted(p for p in parent.nodes if not p.endswith(FORK_STATE))
        raise ForkError(f"run {parent.run_id} has no path {at!r}; paths: {', '.join(paths)}")
    return levels


_LOOKS = {"position", "label", "description"}  # what changes no result


def _changed(old: Workflow, new: Workflow) -> list[str]:
    """Node ids of ``new`` whose spec differs from ``old``'s (an edited workflow)."""
    return [n for n, node in new.nodes.items() if n not in old.nodes
            or old.nodes[n].model_dump(exclude=_LOOKS) != node.model_dump(exclude=_LOOKS)]


def _body_workflow(store: RunStore, node: Node, selector: str) -> Workflow:
    """The sub-workflow a foreach item (``[3]``) or parallel branch (``.a``) of ``node`` runs."""
    config = node.config
    if node.type == "parallel":
        config = (config.get("branches") or {}).get(selector.lstrip("."), {})
    reference = config.get("workflow") if isinstance(config, dict) else None
    if node.type not in ("foreach", "parallel") or reference is None:
        raise ForkError(f"node {node.id!r} ({node.type}) runs no sub-workflow at {selector!r}; "
                        "fork a child run (subflow) by its own run id")
    return resolve_workflow(reference, store)


def _dropped(path: str, levels: list[_Level]) -> bool:
    """Whether the parent's result at ``path`` is one the edit reaches (it is not copied)."""
    for depth, level in enumerate(levels):
        relative = path[len(level.prefix):]
        head = _head(relative.split("/", 1)[0])
        if head not in level.affected:
            return False
        if head != level.node_id:
            return True  # downstream of the fork node (or a changed node)
        if depth == len(levels) - 1:  # the fork node, or the composite node of its item
            return relative == level.node_id or _within(relative, level.segment)
        if relative in (level.node_id, level.segment):
            return True  # the composite node and the item around the fork: they run again
        if not relative.startswith(level.segment + "/"):
            return False  # a sibling item or branch
    return False


def _within(path: str, node_path: str) -> bool:
    """``path`` is ``node_path`` or inside it (``loop[3]``, ``loop#2`` are inside ``loop``)."""
    return path == node_path or (path.startswith(node_path)
                                 and path[len(node_path)] in _SEPARATORS)


def _records(parent: RunSnapshot, levels: list[_Level], at: str, output: Any,
             state: dict[str, Any]) -> list[JournalRecord]:
    """The fork's first records: copies of what it reuses, the edited output, the state."""
    now = time.time()
    records: list[JournalRecord] = []
    kept: dict[str, StoredNode] = {}
    for path, stored in parent.nodes.items():  # in commit order
        if stored["status"] in _REUSABLE and not _dropped(path, levels):
            kept[path] = stored
            records.append(copy_record(parent.run_id, path, stored, now))
    if output is not _UNSET:
        old = parent.nodes.get(at)
        patch = old["state_patch"] if old is not None and old["status"] == "succeeded" else None
        edited = _node(at, old["type"] if old and old["type"] else _type(levels),
                       output, patch, now)
        edited["input"] = old["input"] if old is not None else None
        edited["cached_from"] = {"run_id": parent.run_id, "path": at, "edit": "output"}
        records.append(edited)
    if state:
        path = levels[-1].prefix + FORK_STATE
        earlier = kept.get(path)
        merged = {**((earlier["state_patch"] if earlier else None) or {}), **state}
        records.append(_node(path, "fork", None, merged, now))
    return records


def _node(path: str, node_type: str, output: Any, patch: dict[str, Any] | None,
          now: float) -> NodeRecord:
    return {"k": "node", "node": path, "type": node_type, "status": "succeeded", "attempts": 0,
            "input": None, "output": output, "error": None, "state_patch": patch,
            "started": now, "ended": now, "entity": _head(path.rsplit("/", 1)[-1])}


def copy_record(parent_id: str, path: str, stored: StoredNode, now: float) -> NodeRecord:
    """The fork's record of a result it reuses from its parent."""
    record = _node(path, stored["type"] or "", stored["output"], stored["state_patch"], now)
    record["status"], record["attempts"] = stored["status"], stored["attempts"]
    record["input"], record["error"] = stored["input"], stored["error"]
    record["started"], record["ended"] = stored["started"] or now, stored["ended"] or now
    if stored["cache_key"]:
        record["cache_key"] = stored["cache_key"]
    if path.endswith(FORK_STATE):
        return record  # an earlier fork's state edits: kept as they were
    record["cached_from"] = {"run_id": parent_id, "path": path}
    return record


def _type(levels: list[_Level]) -> str:
    level = levels[-1]
    return level.workflow.nodes[level.node_id].type if level.segment == level.node_id else ""


def _check_output(levels: list[_Level], at: str, output: Any) -> None:
    """The edited output must be JSON and match the node's ``output_schema``, if any."""
    try:
        codec.dumps(output)
    except codec.NotSerialisableError as exc:
        raise ForkError(f"the output given for {at!r} cannot be stored: {exc}") from exc
    level = levels[-1]
    node = level.workflow.nodes[level.node_id]
    config: Any = node.config
    if level.segment != level.node_id:  # an item or branch of a composite node
        body = config.get("node") if node.type == "foreach" else (
            (config.get("branches") or {}).get(level.segment[len(node.id) + 1:], {}).get("node"))
        config = (body or {}).get("config") or {}
    schema = config.get("output_schema") if isinstance(config, dict) else None
    if not isinstance(schema, dict):
        return
    from fm_lab.spec.schemas import Validator

    problems = [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
                for e in Validator(schema).iter_errors(output)]
    if problems:
        raise ForkError(f"the output given for {at!r} does not match its output_schema "
                        f"({'; '.join(problems)}); nothing was stored")


def _check_state(plan: Plan, records: list[JournalRecord], node_id: str) -> None:
    """The run state the fork node will see (the defaults, then the reused patches and the
    edits replayed) must match the state schema."""
    from fm_lab.engine.errors import StateValidationError

    state = plan.initial_state()
    for record in records:
        if record["k"] == "node" and "/" not in record["node"] and record["state_patch"]:
            state.update(record["state_patch"])
    try:
        plan.check_state(state, node_id)
    except StateValidationError as exc:
        raise ForkError(f"{exc}; nothing was stored") from exc


__all__ = ["FORK_STATE", "ForkError", "afork", "copy_record", "fork", "stopped_run", "store_fork"]
