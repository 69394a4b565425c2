"""The run journal's record kinds, in one place: every writer builds these and every reader
(ingestion, span rows, recovery, resume) reads them through these types, so a new field is
added here and the type checker finds each place that writes or reads it.

Records are plain dicts at run time (a node costs tens of microseconds; a TypedDict costs
nothing), one JSON object per journal line. The keys are short and fixed: journals already on
users' disks are read with these same types, so a key is never renamed, only added (as
``NotRequired``, which old journals lack). The kind is the ``k`` key. Every record gets ``seq``
(its number in the run's journal, 1, 2, ...) from the recorder when it is queued.

:class:`StoredNode` is not a journal record: it is a node's latest result as ``Store.load_run``
reads it back from ``node_executions`` (a resumed run's committed work).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, Protocol, TypedDict

from fm_lab.store.codec import loads


class _Record(TypedDict):
    seq: NotRequired[int]
    """The record's number in its journal (set by ``Recorder.append``; gaps mean damage)."""


class StartRecord(_Record):
    """``k: start``: creates the run (written with its first checkpoint). The workflow as run
    (``workflow_id``, ``version``, content ``hash``, ``spec``), its ``inputs``, the owning
    process (``pid``, ``host``), the ``parent`` run id (a child run), ``created`` (epoch s)
    and the run's ``trace_id`` and execution ``policy`` (absent in journals of older
    versions). ``by``: who started it (:func:`fm_lab.identity.current_user`; absent in older
    journals). A fork (:mod:`fm_lab.engine.fork`) names its parent run ``forked_from`` and the
    node path it was forked at, ``forked_at_node``."""

    k: Literal["start"]
    workflow_id: str
    version: int
    hash: str
    spec: dict[str, Any]
    inputs: dict[str, Any]
    pid: int
    host: str
    parent: str | None
    created: float
    trace_id: NotRequired[str | None]
    by: NotRequired[str]
    policy: NotRequired[str]
    forked_from: NotRequired[str]
    forked_at_node: NotRequired[str]


class NodeRecord(_Record):
    """``k: node``: one finished execution of a node (its checkpoint).

    Result: ``node`` (the path: ``a``, ``loop[3]``, ``par.b/x``), ``type`` (node type),
    ``status`` (succeeded | failed | suspended | skipped), ``attempts``, the rendered config as
    ``input`` (None when static), ``output``, ``error`` (classified, see
    ``engine.errors.classify``), ``state_patch``, ``started`` / ``ended`` (epoch s).

    Tracing (absent on skipped nodes): ``span`` / ``pspan`` (its span and the parent's),
    ``trace``, ``entity`` (the node id), ``events`` (``ctx.event`` calls).

    Optional: ``leaf`` (a suspension: False when a body inside suspended, not the node
    itself), ``cache_key`` (the execution's cache key) and ``cached_from`` (``{run_id,
    path}`` of the stored result reused instead of running)."""

    k: Literal["node"]
    node: str
    type: str
    status: str
    attempts: int
    input: Any
    output: Any
    error: dict[str, Any] | None
    state_patch: dict[str, Any] | None
    started: float
    ended: float
    span: NotRequired[str | None]
    pspan: NotRequired[str | None]
    trace: NotRequired[str]
    entity: NotRequired[str]
    events: NotRequired[list[dict[str, Any]] | None]
    leaf: NotRequired[bool]
    cache_key: NotRequired[str]
    cached_from: NotRequired[dict[str, str]]


class SuspendRecord(_Record):
    """``k: suspend``: a node waits for data (written before its node record). ``path`` (the
    suspension's key: the node path, ``path#2`` for a node's second), ``node`` (node id),
    ``label``, ``payload`` (shown to whoever answers), ``schema`` (JSON schema the answer must
    match), ``since`` (epoch s), ``expires`` (epoch s or None), ``on_timeout`` (fail |
    default) and the ``default`` answer. Optional: who may answer, ``assignees`` (user names)
    and ``roles`` (absent: anyone); ``payload_schema``, the JSON schema ``payload`` matched
    (absent: none declared)."""

    k: Literal["suspend"]
    path: str
    node: str
    label: str | None
    payload: Any
    schema: dict[str, Any] | None
    since: float
    expires: float | None
    on_timeout: str | None
    default: Any
    assignees: NotRequired[list[str]]
    roles: NotRequired[list[str]]
    payload_schema: NotRequired[dict[str, Any]]


class ResumeRecord(_Record):
    """``k: resume``: an answer accepted for the suspension at ``path`` (``data``), ``at``
    (epoch s); durable before the resumed run runs anything. ``by``: who answered (or whose
    process applied an expired wait's timeout, then ``expired`` is true); absent on an answer
    given before and written again, and in older journals."""

    k: Literal["resume"]
    path: str
    data: Any
    at: float
    by: NotRequired[str]
    expired: NotRequired[bool]


class StepRecord(_Record):
    """``k: step``: a ``ctx.step`` result, replayed instead of re-running it: the node
    ``path``, the step's key ``name`` (``path#name``, ``#2``...), its ``result``, ``created``."""

    k: Literal["step"]
    path: str
    name: str
    result: Any
    created: float


class RunEndRecord(_Record):
    """``k: run``: the run (or this segment of it) ended: final ``status``, ``outputs``,
    ``error`` (``{node, kind, type, message, ...}``), the workflow ``state``, ``ended``."""

    k: Literal["run"]
    status: str
    outputs: Any
    error: dict[str, Any] | None
    state: dict[str, Any] | None
    ended: float | None


class SpanRecord(_Record):
    """``k: span``: one finished span (LLM, tool, agent, otel, the run's workflow span).

    Identity: ``trace``, ``span``, ``parent`` (span ids), ``run`` and ``workflow`` (None
    outside runs), ``node`` (the node path it ran in), ``kind``, ``name``, ``entity``,
    ``agent``, ``resource``. Timing and result: ``started`` / ``ended`` (epoch s), ``status``
    (ok | error), ``input``, ``output``, ``error``, ``attrs``, ``events``. Usage (LLM spans):
    ``model``, ``provider``, token counts and ``cost_usd``.

    Span records are built by :mod:`fm_lab.tracing` (``Span.end``, the OpenTelemetry bridge)
    and by the runner (the workflow span); DuckDB parses them itself at ingestion (see
    ``span_table._SPAN_RECORD``, which lists the same keys)."""

    k: Literal["span"]
    trace: str
    span: str
    parent: str | None
    run: NotRequired[str | None]
    kind: str
    name: NotRequired[str | None]
    entity: NotRequired[str | None]
    workflow: NotRequired[str | None]
    node: NotRequired[str | None]
    agent: NotRequired[str | None]
    resource: NotRequired[str | None]
    started: float
    ended: float
    status: NotRequired[str | None]
    input: NotRequired[Any]
    output: NotRequired[Any]
    error: NotRequired[Any]
    attrs: NotRequired[dict[str, Any] | None]
    events: NotRequired[list[dict[str, Any]] | None]
    model: NotRequired[str | None]
    provider: NotRequired[str | None]
    input_tokens: NotRequired[int | None]
    output_tokens: NotRequired[int | None]
    cached_tokens: NotRequired[int | None]
    cache_write_tokens: NotRequired[int | None]
    reasoning_tokens: NotRequired[int | None]
    cost_usd: NotRequired[float | None]


JournalRecord = (StartRecord | NodeRecord | SuspendRecord | ResumeRecord | StepRecord
                 | RunEndRecord | SpanRecord)
"""Any journal line (``k`` tells which)."""

OtherRecord = StartRecord | SuspendRecord | ResumeRecord | StepRecord | RunEndRecord
"""The records that are neither node nor span records (few per run)."""


class StoredNode(TypedDict):
    """A node path's latest stored result (``Store.load_run``): what a resumed run restores
    and ``Run.node`` shows. The fields mean what :class:`NodeRecord`'s of the same name mean;
    ``seq`` is the node record's journal number (commit order)."""

    status: str
    output: Any
    error: dict[str, Any] | None
    state_patch: dict[str, Any] | None
    attempts: int
    seq: int
    started: float | None
    ended: float | None
    type: str | None
    leaf: bool
    input: Any
    cache_key: str | None
    cached_from: dict[str, str] | None


STORED_NODE_COLUMNS = (
    "node_id, status, output, error, state_patch, attempts, seq, epoch(started_at) as started, "
    "epoch(ended_at) as ended, node_type, leaf, input, cache_key, cached_from")
"""The ``node_executions`` columns :func:`stored_node` reads (a SELECT list)."""


def stored_node(row: Mapping[str, Any]) -> StoredNode:
    """A ``node_executions`` row (selected as :data:`STORED_NODE_COLUMNS`, by name) as the
    node's stored result; JSON columns decoded."""
    leaf = row["leaf"]
    return {
        "status": row["status"],
        "output": loads(row["output"]),
        "error": loads(row["error"]),
        "state_patch": loads(row["state_patch"]),
        "attempts": row["attempts"],
        "seq": row["seq"],
        "started": row["started"],
        "ended": row["ended"],
        "type": row["node_type"],
        "leaf": True if leaf is None else bool(leaf),
        "input": loads(row["input"]),
        "cache_key": row["cache_key"],
        "cached_from": loads(row["cached_from"]),
    }


class Rows(Protocol):
    """An executed query: a DuckDB connection, or :class:`~fm_lab.store.pg_sql.PgConnection`."""

    @property
    def description(self) -> Any: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...


def fetch_dicts(cursor: Rows) -> list[dict[str, Any]]:
    """The rows of an executed query as dicts by column name (its SELECT list's names)."""
    names = [column[0] for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def fetch_dict(cursor: Rows) -> dict[str, Any] | None:
    """The first row of an executed query as a dict by column name, or None (the result is
    fetched whole: DuckDB takes no other work on a connection with an unfinished result)."""
    rows = fetch_dicts(cursor)
    return rows[0] if rows else None
