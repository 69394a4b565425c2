"""The store seam: what the engine, tracing, memory and batches need of storage.

:class:`RunStore` is the protocol every store implements (the DuckDB file store, the in-memory
:class:`~fm_lab.store.memory_store.MemoryStore` of engine tests, later a server store); callers
type against it, never a concrete backend. What a store can do beyond keeping runs is declared
in ``supports`` and read through :func:`require` or :func:`has`, so a caller that needs SQL or a
store other processes share says so in one clear error instead of failing deep inside.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypedDict, cast, runtime_checkable

from fm_lab.store.errors import StoreError

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.spec.models import Workflow
    from fm_lab.store.audit import AuditEntry, AuditRow
    from fm_lab.store.journal import Durability, RunJournal
    from fm_lab.store.records import JournalRecord, StoredNode

# ---- capabilities (``RunStore.supports``) -------------------------------------------------
RUNS: Final = "runs"  # keeps runs, node results, suspensions, steps (every store)
JOURNAL: Final = "journal"  # checkpoints to a local journal per run between ingests; another
#                             process's live run is seen (and cancelled) through its journal
SQL: Final = "sql"  # `sql()` and `connection()` (traces, usage, memory history, batches)
SHARED: Final = "shared"  # other processes (CLI, batch kernels, timers) see the same runs
SHARDS: Final = "shards"  # batch workers write Parquet shards the store's views union
VECTORS: Final = "vectors"  # the store keeps embedding vectors itself (PostgreSQL with
#                             pgvector): memory recall and knowledge bases live in its tables
CAPABILITIES: Final = frozenset({RUNS, JOURNAL, SQL, SHARED, SHARDS, VECTORS})


class UnsupportedStoreError(StoreError):
    """The store cannot do what the caller needs (see ``RunStore.supports``)."""


@dataclass
class RunSnapshot:
    """A run as stored: its row, workflow and the latest committed result of each node."""

    run_id: str
    workflow: Workflow
    status: str
    inputs: dict[str, Any]
    outputs: Any
    error: Any
    state: dict[str, Any] | None
    journal_seq: int
    nodes: dict[str, StoredNode] = field(default_factory=dict)
    steps: dict[str, Any] = field(default_factory=dict)
    resumes: dict[str, Any] = field(default_factory=dict)
    parent_run_id: str | None = None
    trace_id: str | None = None
    policy: str | None = None  # the execution policy it started under (None: before v7)
    forked_from: str | None = None  # the run this one was forked from (fm_lab.engine.fork)
    forked_at_node: str | None = None  # the node path it was forked at


class PendingRow(TypedDict):
    """One suspension waiting for data (a row of ``fm_lab.pending()``)."""

    run_id: str
    workflow_id: str
    node_id: str | None
    label: str | None
    path_id: str
    payload: str | None  # JSON text
    since: dt.datetime
    expires_at: dt.datetime | None
    on_timeout: str | None
    resume_schema: str | None  # JSON text
    default_data: str | None  # JSON text
    assignees: str | None  # JSON text: the user names who may answer (none: anyone)
    roles: str | None  # JSON text: the roles whose holders may answer
    payload_schema: str | None  # JSON text: the schema of payload (None: none declared)


PENDING_COLUMNS: Final = tuple(PendingRow.__annotations__)
RUN_COLUMNS: Final = ("run_id", "workflow_id", "workflow_version", "status", "created_at",
                      "ended_at", "duration_ms", "inputs", "outputs", "error", "parent_run_id",
                      "owner_pid", "started_by", "workflow_hash", "policy")
"""The columns of ``RunStore.runs()``, in order."""
WORKFLOW_COLUMNS: Final = ("workflow_id", "version", "hash", "name", "saved_by", "created_at")
"""The columns of ``RunStore.workflows()``, in order."""


@runtime_checkable
class RunStore(Protocol):
    """What every store does: keep runs, fed by journal records, and read them back.

    Records are the journal's (:mod:`fm_lab.store.records`): ``start``, ``node``, ``span``,
    ``suspend``, ``resume``, ``step`` and ``run``, each with a ``seq``; ``ingest`` stores
    them once (a record at or below the run's stored ``journal_seq`` is skipped)."""

    path: str  # where it lives, for messages: a file, a URL or ":memory:"
    memory: bool  # nothing outlives the process
    read_only: bool
    durability: Durability
    supports: frozenset[str]

    # -- lifetime
    def hold(self) -> AbstractContextManager[Any]:
        """Keep the store open across a block of operations."""
        ...

    def held_here(self) -> bool:
        """True inside this thread's :meth:`hold` (a flush must not wait on itself)."""
        ...

    def defer(self, run_id: str, records: Sequence[JournalRecord],
              texts: Mapping[int, bytes] | None = None,
              journal: RunJournal | None = None) -> bool:
        """Queue a finished run's records to be stored with others' (True: keep its
        ``journal`` until then), or refuse (False: ingest them now)."""
        ...

    def close(self) -> None:
        """Release whatever the store keeps open."""
        ...

    # -- writing a run
    def open_journal(self, run_id: str, new: bool = False) -> RunJournal | None:
        """The run's journal, locked by this process (None: records go straight to
        :meth:`ingest`). Raises ``RunLockedError`` while another process runs it. ``new``:
        the run is being started (nobody held it before, nothing of it is stored); a store
        may take it with its first commit instead, which then raises ``RunLockedError``
        (the PostgreSQL store: one round trip fewer)."""
        ...

    def claim_run(self, run_id: str, audit: Sequence[AuditEntry] = ()) -> None:
        """Mark a stored run ``running`` and owned by this process (a resume); log ``audit``
        in the same transaction."""
        ...

    def ingest(self, run_id: str, records: Sequence[JournalRecord], wait: bool = True,
               texts: Mapping[int, bytes] | None = None) -> None:
        """Store journal records in one transaction (idempotent by ``seq``)."""
        ...

    def adopt_journal(self, run_id: str, journal: RunJournal, force: bool = False) -> list[str]:
        """Store what a locked journal holds from earlier segments; return warnings."""
        ...

    def recover_journals(self, run_id: str | None = None) -> list[str]:
        """Store journals left by dead processes; return their run ids."""
        ...

    def recover_later(self) -> None:
        """Recover journals the next time the store is opened."""
        ...

    def set_status(self, run_id: str, status: str, audit: Sequence[AuditEntry] = ()) -> None:
        """Set a stored (not live) run's status; log ``audit`` in the same transaction."""
        ...

    def delete_run(self, run_id: str, audit: AuditEntry) -> list[str]:
        """Remove a stored run and its child runs (rows, node results, spans, suspensions,
        steps) and log ``audit``, in one transaction; return the removed run ids. The caller
        makes sure no process runs them."""
        ...

    # -- the audit log (append-only: see fm_lab.store.audit)
    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to the audit log (numbered and hash-chained by the store)."""
        ...

    def audit_rows(self, run_id: str | None = None, actor: str | None = None,
                   action: str | None = None, since: dt.datetime | None = None,
                   limit: int | None = None) -> list[AuditRow]:
        """Audit rows in ``seq`` order (oldest first), filtered; ``limit``: the newest ones."""
        ...

    # -- liveness and cancel across processes
    def settings(self, fresh: bool = False) -> dict[str, Any]:
        """The store's settings (:mod:`fm_lab.store.settings`): key to checked value; a
        copy read a few seconds ago may serve unless ``fresh``."""
        ...

    def set_setting(self, key: str, value: Any, actor: str) -> Any:
        """Store a checked setting (None: remove it) and log it; return its old value."""
        ...

    def run_is_live(self, run_id: str) -> bool:
        """True while some process runs ``run_id``."""
        ...

    def request_cancel(self, run_id: str) -> None:
        """Ask the process running ``run_id`` to cancel it at its next check."""
        ...

    def take_cancel_request(self, run_id: str) -> bool:
        """True (once) if a cancel of ``run_id`` was requested; consumes the request."""
        ...

    # -- reading
    def load_run(self, run_id: str) -> RunSnapshot:
        """The stored run (raises ``RunNotFoundError``)."""
        ...

    def run_status(self, run_id: str) -> str:
        """The stored status of a run (raises ``RunNotFoundError``)."""
        ...

    def child_runs(self, run_id: str, statuses: tuple[str, ...] = ()) -> list[str]:
        """Ids of ``run_id``'s child runs (any depth), optionally only in ``statuses``."""
        ...

    def orphaned_runs(self) -> list[str]:
        """Top-level runs stored as ``running`` (left by a process that died, or live
        elsewhere), oldest first."""
        ...

    def pending_rows(self, run_id: str | None = None,
                     with_children: bool = False) -> list[PendingRow]:
        """Suspensions waiting for data, oldest first."""
        ...

    def pending(self, run_id: str | None = None, with_children: bool = False) -> pd.DataFrame:
        """:meth:`pending_rows` as a DataFrame."""
        ...

    def latest_workflow(self, workflow_id: str) -> Workflow:
        """The newest stored version of ``workflow_id``."""
        ...

    def load_workflow(self, workflow_id: str, version: int | None = None) -> Workflow:
        """Stored version ``version`` of ``workflow_id`` (None: the newest); raises
        ``FileNotFoundError`` naming the versions there are."""
        ...

    def save_workflow(self, workflow: Workflow, saved_by: str | None) -> int:
        """Store ``workflow`` as a new version unless this exact content is stored already;
        return its version number (the one a run of the same content records)."""
        ...

    def cache_entries(self, workflow_id: str) -> dict[str, tuple[str, str | None, str, str]]:
        """Newest successful result per cache key: ``{key: (output JSON, state patch JSON,
        run_id, path)}``."""
        ...

    def runs(self, limit: int | None = 100, status: str | None = None) -> pd.DataFrame:
        """Recent runs, newest first (with ``started_by`` and ``workflow_hash``)."""
        ...

    def workflows(self, workflow_id: str | None = None) -> pd.DataFrame:
        """Stored workflow versions (``workflow_id, version, hash, name, saved_by,
        created_at``), newest first."""
        ...

    def node_executions(self, run_id: str, history: bool = False) -> pd.DataFrame:
        """One row per node of a run (every attempt with ``history=True``)."""
        ...


@runtime_checkable
class SqlStore(RunStore, Protocol):
    """A store that answers SQL (``supports`` has ``"sql"``): traces, usage, memory history
    and batch tables are queries on it."""

    def connection(self, timeout_s: float | None = None) -> AbstractContextManager[Any]:
        """A database connection for the duration of the block."""
        ...

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL on the store and return a DataFrame."""
        ...


def sql_store(store: RunStore, what: str) -> SqlStore:
    """``store`` as a :class:`SqlStore`, or :class:`UnsupportedStoreError` naming ``what``
    needs SQL."""
    require(store, SQL, what)
    return cast("SqlStore", store)


def shard_dir(store: RunStore) -> Path | None:
    """Where batch workers' Parquet shards of ``store`` go (None without ``"shards"``)."""
    folder = getattr(store, "shard_dir", None) if has(store, SHARDS) else None
    return Path(folder) if folder is not None else None


def journal_dir(store: RunStore) -> Path | None:
    """The folder of ``store``'s run journals (None without ``"journal"``)."""
    folder = getattr(store, "journal_dir", None) if has(store, JOURNAL) else None
    return Path(folder) if folder is not None else None


def server_url(store: RunStore) -> str | None:
    """The URL another process (a Dask worker, a notebook kernel) opens ``store`` with when it
    lives on a server every process writes to directly (``shared``, no local ``journal``);
    None for a file or memory store."""
    url = getattr(store, "url", None)
    if has(store, SHARED) and not has(store, JOURNAL) and isinstance(url, str):
        return url
    return None


def has(store: object, capability: str) -> bool:
    """Whether ``store`` declares ``capability`` in its ``supports`` flags."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown store capability {capability!r}; known: "
                         f"{', '.join(sorted(CAPABILITIES))}")
    return capability in getattr(store, "supports", frozenset())


def require(store: object, capability: str, what: str) -> None:
    """Raise :class:`UnsupportedStoreError` naming ``what`` needs ``capability`` when
    ``store`` lacks it."""
    if not has(store, capability):
        supports = ", ".join(sorted(getattr(store, "supports", ()))) or "nothing"
        raise UnsupportedStoreError(
            f"{what} needs a store with {capability!r}; {getattr(store, 'path', store)} "
            f"supports: {supports}. Use a DuckDB store (fm_lab.connect(path) or ':memory:')")


def pending_frame(rows: list[PendingRow]) -> pd.DataFrame:
    """Pending rows as the DataFrame ``fm_lab.pending()`` returns (timestamps in UTC)."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(PENDING_COLUMNS))
    for column in ("since", "expires_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
