"""Exact offline replay: run a stored run again with every model call answered from that run's
own recorded responses (its ``llm`` spans, or a cassette file), code re-run, and report each
node whose result differs.

The recorded responses are matched per run and node path (a child run by its path too), in
the order they were made (a call whose last message matches is preferred); a call nothing
recorded answers fails its node, it never reaches a provider. Nodes that touch the world
(``http``, humans' answers, sleeps, knowledge bases, voice calls), and a fork's edits, keep
their recorded results. The replay is a new run linked to the original (``forked_from``).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.engine.diff import diff, llm_spans
from fm_lab.engine.fork import FORK_STATE, Fork, copy_record, stopped_run, store_fork
from fm_lab.engine.run import Run
from fm_lab.identity import current_user
from fm_lab.llm.cassette import Cassette, CassetteMiss, scoped
from fm_lab.security.policy import resolve_policy
from fm_lab.sync import run_sync
from fm_lab.tracing.spans import current

if TYPE_CHECKING:

    import pandas as pd

    from fm_lab.store.base import RunSnapshot, RunStore
    from fm_lab.store.records import JournalRecord

OUTSIDE_TYPES = frozenset({"http", "approval", "user_input", "wait_for_event", "sleep",
                           "sleep_until", "kb_query", "speak", "transcribe"})
"""Node types whose recorded results a replay keeps: they depend on the world, not the code
(voice calls too: their audio is a file, never in the store, so nothing could answer them)."""


@dataclass
class Replay:
    """What :func:`replay` found: the new ``run``, the ``differences`` (rows of
    :func:`fm_lab.diff` that changed) and the model calls nothing recorded answered
    (``misses``: ``(node path, model)``; none were sent to a provider)."""

    source: str
    run: Run
    differences: pd.DataFrame
    misses: list[tuple[str, str]] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """Every node's status and output are those recorded."""
        return self.differences.empty

    def __repr__(self) -> str:
        found = ("identical" if self.identical
                 else f"{len(self.differences)} differ: {', '.join(self.differences['path'])}")
        return f"<Replay of {self.source} as {self.run.run_id}: {found}>"


class SpanTape(Cassette):
    """A replay-only cassette of one run's recorded model responses, by (run, node path)."""

    def __init__(self, calls: dict[tuple[str, str], deque[dict[str, Any]]], root: str) -> None:
        self.path = Path(f"<recorded responses of run {root}>")
        self.mode = "replay"
        self.entries = {}
        self.hits = 0
        self.recorded = 0
        self._lock = threading.Lock()
        self.calls = calls
        self.root = root  # the replay's run id (set once it is chosen)
        self.misses: list[tuple[str, str]] = []

    def lookup(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any],
               stream: bool) -> tuple[str, dict[str, Any] | None]:
        """The next recorded response of the calling node; :class:`CassetteMiss` if none."""
        ctx = current()
        run = (ctx.run_id or "") if ctx is not None else ""
        path = (ctx.node_id or "") if ctx is not None else ""
        key = (run[len(self.root):] if run.startswith(self.root) else run, path)
        with self._lock:
            queue = self.calls.get(key) or deque()
            last = _last_text(messages)
            chosen = next((c for c in queue if c["model"] == model and c["last"] == last),
                          next((c for c in queue if c["model"] == model), None))
            if chosen is None:
                self.misses.append((path, model))
                raise CassetteMiss(f"run {self.root} recorded no further {model!r} call at "
                                   f"node {path!r}: nothing sent to the provider")
            queue.remove(chosen)
            self.hits += 1
        return "", chosen["entry"]

    def record(self, key: str, model: str, messages: list[dict[str, Any]],
               response: dict[str, Any] | None = None,
               chunks: list[dict[str, Any]] | None = None) -> None:
        raise CassetteMiss("a replay never records")  # pragma: no cover - lookup raised first


def _last_text(messages: list[dict[str, Any]] | Any) -> str | None:
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return None
    return str(messages[-1].get("content"))


def _entry(model: str, span: dict[str, Any]) -> dict[str, Any]:
    """A cassette entry (a whole response and a stream's chunks) from a recorded span."""
    output = span["output"]
    calls = output.get("tool_calls") or []
    finish = "tool_calls" if calls else "stop"
    usage = {"prompt_tokens": span["input_tokens"] or 0,
             "completion_tokens": span["output_tokens"] or 0,
             "total_tokens": (span["input_tokens"] or 0) + (span["output_tokens"] or 0)}

    def tool_calls(indexed: bool) -> list[dict[str, Any]] | None:
        return [{**({"index": i} if indexed else {}), "id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}}
                for i, c in enumerate(calls)] or None

    message = {"role": "assistant", "content": output.get("content"),
               "tool_calls": tool_calls(False)}
    delta = {"role": "assistant", "content": output.get("content"),
             "tool_calls": tool_calls(True)}
    return {"response": {"id": "fm-lab-replay", "model": model, "usage": usage, "choices": [
                {"index": 0, "message": message, "finish_reason": finish}]},
            "chunks": [{"id": "fm-lab-replay", "model": model, "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish}]},
                {"id": "fm-lab-replay", "model": model, "choices": [], "usage": usage}]}


def origins(store: RunStore, snapshot: RunSnapshot) -> dict[str, tuple[str, str, bool]]:
    """Per node path, the run and path that produced its result, following ``cached_from``
    through forks of forks and cache hits, and whether it is a fork's edit."""
    runs = {snapshot.run_id: snapshot}
    found: dict[str, tuple[str, str, bool]] = {}
    for path, record in snapshot.nodes.items():
        run_id, where, current_record = snapshot.run_id, path, record
        while True:
            source = current_record.get("cached_from") or {}
            origin = source.get("run_id")
            if source.get("edit") or not origin or origin == run_id:
                found[path] = (run_id, where, bool(source.get("edit")))
                break
            if origin not in runs:
                runs[origin] = store.load_run(origin)
            run_id, where = origin, source.get("path") or where
            next_record = runs[origin].nodes.get(where)
            if next_record is None:
                found[path] = (run_id, where, False)
                break
            current_record = next_record
    return found


def recorded_calls(store: RunStore, snapshot: RunSnapshot
                   ) -> tuple[dict[tuple[str, str], deque[dict[str, Any]]], list[str]]:
    """The run's successful model calls by (child run suffix, node path), with those of the
    runs it reused results from (a fork's parent, a cache hit's run) for the paths it
    reused; and the paths whose recorded answers are incomplete (cut by the store's span
    size limit)."""
    calls: dict[tuple[str, str], deque[dict[str, Any]]] = {}
    incomplete: list[str] = []
    sources: dict[str, dict[str, str]] = {snapshot.run_id: {}}  # run -> its path -> ours
    for path, (run_id, where, _) in origins(store, snapshot).items():
        if run_id != snapshot.run_id:
            sources.setdefault(run_id, {})[where] = path
    for run_id, paths in sources.items():
        for span in llm_spans(store, run_id, children=not paths):
            node = span["node"] or ""
            if span["status"] != "ok" or (paths and node not in paths):
                continue
            key = (str(span["run"])[len(run_id):], paths.get(node, node))
            if not isinstance(span["output"], dict):
                incomplete.append(key[1])
                continue
            model = span["model"] or ""
            calls.setdefault(key, deque()).append(
                {"model": model, "last": _last_text((span["input"] or {}).get("messages")
                                                    if isinstance(span["input"], dict) else None),
                 "entry": _entry(model, span)})
    return calls, incomplete


def reproducible(run: Run | str, store: RunStore | None = None) -> bool:
    """Whether :func:`replay` can answer every model call of the run from its own records:
    each node of a model-calling type that succeeded has recorded answers, none cut short by
    the store's span size limit (a replay never calls a provider; this says it need not)."""
    from fm_lab.nodes.registry import default_registry

    snapshot, store = stopped_run(run, store if store is not None else
                                  run.store if isinstance(run, Run) else None)
    calls, incomplete = recorded_calls(store, snapshot)
    answered = {path for _, path in calls}
    registry, made = default_registry(), origins(store, snapshot)
    for path, record in snapshot.nodes.items():
        node_type = registry.lookup(record["type"] or "")
        if (record["status"] == "succeeded" and node_type is not None
                and node_type.calls_models and not made[path][2] and path not in answered):
            return False
    return not incomplete


async def areplay(run: Run | str, *, store: RunStore | None = None,
                  cassette_path: str | Path | None = None, **kwargs: Any) -> Replay:
    """Run ``run`` again offline: model calls are answered from its recorded responses (or
    from the cassette file ``cassette_path``, replay mode), code nodes re-run, and the
    outside world's nodes keep their results. Returns a :class:`Replay` listing every node
    whose status or output differs. Other keyword arguments go to :func:`fm_lab.aresume`."""
    from fm_lab.engine.api import aresume, new_run_id

    snapshot, store = stopped_run(run, store if store is not None else
                                  run.store if isinstance(run, Run) else None)
    records: list[JournalRecord] = []
    made = origins(store, snapshot)
    for path, record in snapshot.nodes.items():
        if record["status"] == "succeeded" and (
                record["type"] in OUTSIDE_TYPES or made[path][2] or path.endswith(FORK_STATE)):
            records.append(copy_record(snapshot.run_id, path, record, 0.0))
    run_id = new_run_id()
    tape = SpanTape(recorded_calls(store, snapshot)[0], run_id)
    policy = resolve_policy(kwargs.pop("policy", None), store=store, stored=snapshot.policy)
    # answers for this replay's own context only: other runs in the process go on as usual
    answering = scoped(tape if cassette_path is None else Cassette(cassette_path, "replay"))
    store_fork(store, Fork(snapshot, "", snapshot.workflow, snapshot.inputs, records), run_id,
               policy=policy.mode, user=current_user())
    with answering:
        result = await aresume(run_id, store=store, **kwargs)
    result.forked_from = snapshot.run_id
    return Replay(snapshot.run_id, result, diff(snapshot.run_id, run_id, store,
                                                changed_only=True), tape.misses)


def replay(run: Run | str, **kwargs: Any) -> Replay:
    """Synchronous :func:`areplay`: ``fm_lab.replay(run_id).differences``."""
    return run_sync(areplay(run, **kwargs))


__all__ = ["OUTSIDE_TYPES", "Replay", "SpanTape", "areplay", "origins", "recorded_calls", "replay",
           "reproducible"]
