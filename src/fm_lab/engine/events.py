"""Typed run events: what :func:`fm_lab.stream` yields. Each is a frozen dataclass with a
``kind``, the ``run_id``, a ``seq`` (1, 2, ... within one stream: a gap means events were
dropped), the time ``at`` (seconds since the epoch, UTC) and, for node events, the node
``path`` (``loop[3]/approve`` inside a foreach item). ``to_dict()`` / ``to_json()`` give
their JSON form; :func:`from_dict` reads it back.

:class:`EventTranslator` turns the engine's ``on_event`` dicts into these."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class RunEvent:
    """What every event carries."""

    kind: ClassVar[str] = "event"
    run_id: str
    seq: int
    at: float

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data (``kind`` first)."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        """The event as one line of JSON (DataFrames and bytes tagged as the store tags them)."""
        from fm_lab.store.codec import dumps

        return dumps(self.to_dict())


@dataclass(frozen=True)
class RunStarted(RunEvent):
    """The run started (``resumed``: it continues a stored run)."""

    kind: ClassVar[str] = "run_started"
    workflow_id: str | None = None
    resumed: bool = False


@dataclass(frozen=True)
class NodeEvent(RunEvent):
    """Something happened at node ``node_id``, at ``path`` (its id, or a path inside a
    foreach item or parallel branch)."""

    path: str = ""
    node_id: str = ""


@dataclass(frozen=True)
class NodeStarted(NodeEvent):
    """A node started running."""

    kind: ClassVar[str] = "node_started"


@dataclass(frozen=True)
class NodeFinished(NodeEvent):
    """A node finished: ``status`` is ``succeeded``, ``skipped`` (its branch was not taken)
    or ``cached`` (a stored result was reused)."""

    kind: ClassVar[str] = "node_finished"
    status: str = "succeeded"
    duration_ms: float | None = None
    output: Any = None


@dataclass(frozen=True)
class NodeFailed(NodeEvent):
    """A node failed after its retries (``error``: kind, message, ...)."""

    kind: ClassVar[str] = "node_failed"
    error: dict[str, Any] | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class NodeSuspended(NodeEvent):
    """A node waits for outside data (``fm_lab.resume`` continues it): ``label`` and
    ``payload`` are what ``fm_lab.pending()`` shows; ``leaf`` is False for a composite
    (a foreach or parallel node) waiting for paths inside it."""

    kind: ClassVar[str] = "node_suspended"
    duration_ms: float | None = None
    label: str | None = None
    payload: Any = None
    leaf: bool = True


@dataclass(frozen=True)
class ItemProgress(NodeEvent):
    """A foreach node announced its items (``index`` None, ``done`` 0) or one item ended
    (``index``, its ``status``)."""

    kind: ClassVar[str] = "item_progress"
    index: int | None = None
    status: str | None = None
    done: int = 0
    total: int | None = None


@dataclass(frozen=True)
class Log(NodeEvent):
    """A ``log`` node (or ``ctx.add_event("log", ...)``) wrote a line."""

    kind: ClassVar[str] = "log"
    level: str = "info"
    message: str = ""
    data: Any = None


@dataclass(frozen=True)
class EventsDropped(RunEvent):
    """``count`` events were left out because the consumer fell behind (see
    :class:`fm_lab.engine.stream.RunStream`)."""

    kind: ClassVar[str] = "events_dropped"
    count: int = 0


@dataclass(frozen=True)
class RunFinished(RunEvent):
    """The run stopped: ``status`` is ``succeeded``, ``failed``, ``suspended`` or
    ``cancelled``; always the last event of a stream."""

    kind: ClassVar[str] = "run_finished"
    status: str = ""
    outputs: Any = None
    error: dict[str, Any] | None = None


EVENT_TYPES: dict[str, type[RunEvent]] = {
    cls.kind: cls for cls in (RunStarted, NodeStarted, NodeFinished, NodeFailed, NodeSuspended,
                              ItemProgress, Log, EventsDropped, RunFinished)
}


def from_dict(data: dict[str, Any]) -> RunEvent:
    """The event :meth:`RunEvent.to_dict` gave."""
    fields = dict(data)
    kind = fields.pop("kind", None)
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown run event kind {kind!r}; kinds: {', '.join(EVENT_TYPES)}")
    return cls(**fields)


def _item(path: str) -> tuple[str, int] | None:
    """``("loop", 3)`` for an item path ``loop[3]``; None for any other path."""
    if not path.endswith("]") or "[" not in path:
        return None
    head, _, index = path[:-1].rpartition("[")
    return (head, int(index)) if index.isdigit() else None


class EventTranslator:
    """Turns the engine's ``on_event`` dicts of one run into typed events, numbering them.
    Nodes restored from a checkpoint on resume are not events: they already happened."""

    def __init__(self) -> None:
        self.seq = 0
        self._totals: dict[str, int] = {}  # foreach path -> items announced
        self._done: dict[str, int] = {}  # foreach path -> items ended

    def _next(self) -> tuple[int, float]:
        self.seq += 1
        return self.seq, time.time()

    def translate(self, event: dict[str, Any]) -> RunEvent | None:
        """The typed event for ``event``, or None when it is not one."""
        kind, run_id = event.get("type"), str(event.get("run_id", ""))
        if kind == "run":
            return self._run(event, run_id)
        if kind == "items":
            path = str(event["path"])
            self._totals[path], self._done[path] = int(event["total"]), 0
            return ItemProgress(run_id, *self._next(), path=path, node_id=event["node_id"],
                                total=self._totals[path])
        if kind == "log":
            return Log(run_id, *self._next(), path=event["path"], node_id=event["node_id"],
                       level=str(event.get("level") or "info"),
                       message=str(event.get("message") or ""), data=event.get("data"))
        if kind == "node":
            return self._node(event, run_id)
        return None

    def _run(self, event: dict[str, Any], run_id: str) -> RunEvent:
        status = event.get("status")
        if status == "running":
            return RunStarted(run_id, *self._next(), workflow_id=event.get("workflow_id"),
                              resumed=bool(event.get("resumed")))
        return RunFinished(run_id, *self._next(), status=str(status),
                           outputs=event.get("outputs"), error=event.get("error"))

    def _node(self, event: dict[str, Any], run_id: str) -> RunEvent | None:
        path, node_id, status = str(event["path"]), str(event["node_id"]), event.get("status")
        item = _item(path)
        if item is not None and item[0] in self._totals:
            if status == "running":
                return None
            head, index = item
            self._done[head] += 1
            if event.get("restored"):  # done before the resume: counted, not repeated
                return None
            return ItemProgress(run_id, *self._next(), path=head, node_id=node_id,
                                index=index, status=str(status), done=self._done[head],
                                total=self._totals[head])
        if event.get("restored"):
            return None
        duration = event.get("duration_ms")
        if status == "running":
            return NodeStarted(run_id, *self._next(), path=path, node_id=node_id)
        if status == "failed":
            return NodeFailed(run_id, *self._next(), path=path, node_id=node_id,
                              error=event.get("error"), duration_ms=duration)
        if status == "suspended":
            return NodeSuspended(run_id, *self._next(), path=path, node_id=node_id,
                                 duration_ms=duration, label=event.get("label"),
                                 payload=event.get("payload"), leaf=event.get("leaf", True))
        return NodeFinished(run_id, *self._next(), path=path, node_id=node_id,
                            status=str(status), duration_ms=duration,
                            output=event.get("output"))
