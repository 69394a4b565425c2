"""A store in plain Python objects: runs for engine unit tests, with no database.

It keeps what :class:`~fm_lab.store.base.RunStore` promises and nothing more (no SQL, no
journal, nothing shared with another process), so a test of the runner or the session needs no
DuckDB and sees every record the engine stored (:attr:`MemoryStore.records`).

>>> store = MemoryStore()
>>> sorted(store.supports)
['runs']
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from fm_lab.store import codec
from fm_lab.store.audit import AuditEntry, AuditRow, chain, entry, resume_entry, start_entry
from fm_lab.store.base import (
    RUN_COLUMNS,
    RUNS,
    WORKFLOW_COLUMNS,
    PendingRow,
    RunSnapshot,
    pending_frame,
)
from fm_lab.store.errors import RunNotFoundError, StoreError
from fm_lab.store.records import StoredNode
from fm_lab.store.settings import SETTING_CHANGE
from fm_lab.store.versions import pick_version, spec_record

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.spec.models import Workflow
    from fm_lab.store.journal import Durability, RunJournal
    from fm_lab.store.records import JournalRecord, ResumeRecord, StartRecord


def _time(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


@dataclass
class _Run:
    run_id: str
    workflow_id: str
    version: int
    status: str
    inputs: Any
    created: float
    parent: str | None
    trace_id: str | None
    started_by: str | None = None
    workflow_hash: str | None = None
    policy: str | None = None
    forked_from: str | None = None
    forked_at_node: str | None = None
    journal_seq: int = 0
    outputs: Any = None
    error: Any = None
    state: dict[str, Any] | None = None
    ended: float | None = None
    nodes: list[dict[str, Any]] = field(default_factory=list)  # every node record, in order
    suspensions: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[str, Any] = field(default_factory=dict)


class MemoryStore:
    """Runs kept in this process's memory (see the module docstring)."""

    supports = frozenset({RUNS})
    memory = True
    read_only = False
    durability: Durability = "none"

    def __init__(self, name: str = "memory") -> None:
        self.path = f"memory://{name}"
        self._lock = threading.RLock()
        self._runs: dict[str, _Run] = {}
        # workflow_id -> [(hash, spec, saved_by, saved at)], version n at index n - 1
        self._specs: dict[str, list[tuple[str, Any, str | None, float]]] = {}
        self._audit: list[AuditRow] = []
        self._cancels: set[str] = set()
        self._settings: dict[str, Any] = {}
        self.records: list[dict[str, Any]] = []  # every record ingested, as stored
        self.spans: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"MemoryStore({self.path!r})"

    # ---- lifetime ------------------------------------------------------------------------
    @contextmanager
    def hold(self) -> Iterator[MemoryStore]:
        """Nothing to keep open."""
        yield self

    def held_here(self) -> bool:
        """Never: ingest never waits on another holder."""
        return False

    def defer(self, run_id: str, records: Sequence[JournalRecord],
              texts: Mapping[int, bytes] | None = None,
              journal: RunJournal | None = None) -> bool:
        """Never: an ingest here is a few dict updates."""
        return False

    def close(self) -> None:
        """Nothing to release."""

    # ---- writing -------------------------------------------------------------------------
    def open_journal(self, run_id: str, new: bool = False) -> RunJournal | None:
        """None: records go straight to :meth:`ingest`."""
        return None

    def claim_run(self, run_id: str, audit: Sequence[AuditEntry] = ()) -> None:
        """Mark the run running again (a resume); log ``audit``."""
        with self._lock:
            run = self._run(run_id)
            run.status, run.ended, run.error = "running", None, None
            self.append_audit(audit)

    def ingest(self, run_id: str, records: Sequence[JournalRecord], wait: bool = True,
               texts: Mapping[int, bytes] | None = None) -> None:
        """Store records (a copy of each, as JSON would) once each, by ``seq``."""
        with self._lock:
            done = self._runs[run_id].journal_seq if run_id in self._runs else 0
            fresh: list[dict[str, Any]] = [codec.loads(codec.dumps(r)) for r in records
                                           if r["seq"] > done]
            if not fresh:
                return
            if run_id not in self._runs and not any(r["k"] == "start" for r in fresh):
                self.spans.extend(r for r in fresh if r["k"] == "span")  # a standalone trace
                return
            audit: list[AuditEntry] = []
            for record in fresh:
                if (entry := self._apply(run_id, record)) is not None:
                    audit.append(entry)
            self._runs[run_id].journal_seq = fresh[-1]["seq"]
            self.records.extend(fresh)
            self.append_audit(audit)

    def _apply(self, run_id: str, record: dict[str, Any]) -> AuditEntry | None:
        """Store one record; return the audit entry of the action it is, if any."""
        kind = record["k"]
        if kind == "start":
            version = self._save_spec(record)
            self._runs[run_id] = _Run(
                run_id=run_id, workflow_id=record["workflow_id"],
                version=version, status="running", inputs=record["inputs"],
                created=record["created"], parent=record.get("parent"),
                trace_id=record.get("trace_id"), started_by=record.get("by"),
                workflow_hash=record["hash"], policy=record.get("policy"),
                forked_from=record.get("forked_from"),
                forked_at_node=record.get("forked_at_node"))
            return start_entry(run_id, cast("StartRecord", record), version)
        run = self._runs[run_id]
        if kind == "node":
            run.nodes.append(record)
        elif kind == "span":
            self.spans.append(record)
        elif kind == "run":
            run.status, run.outputs = record["status"], record.get("outputs")
            run.error, run.state = record.get("error") or None, record.get("state")
            run.ended = record.get("ended")
        elif kind == "suspend":
            run.suspensions.append({**record, "resumed_seq": None, "resume_data": None})
        elif kind == "resume":
            for waiting in run.suspensions:
                if waiting["path"] == record["path"] and waiting["resumed_seq"] is None:
                    waiting["resumed_seq"], waiting["resume_data"] = record["seq"], record.get(
                        "data")
                    waiting["resumed_by"] = record.get("by")
                    return resume_entry(run_id, cast("ResumeRecord", record))
        elif kind == "step":
            run.steps[record["name"]] = record.get("result")
        return None

    def _save_spec(self, record: dict[str, Any]) -> int:
        versions = self._specs.setdefault(record["workflow_id"], [])
        for number, (digest, *_rest) in enumerate(versions, start=1):
            if digest == record["hash"]:
                return number
        versions.append((record["hash"], record["spec"], record.get("by"), record["created"]))
        return len(versions)

    def adopt_journal(self, run_id: str, journal: RunJournal, force: bool = False) -> list[str]:
        """A memory store has no journals to adopt."""
        return []

    def recover_journals(self, run_id: str | None = None) -> list[str]:
        """Nothing outlives the process, so nothing is left to recover."""
        return []

    def recover_later(self) -> None:
        """Nothing to recover."""

    def set_status(self, run_id: str, status: str, audit: Sequence[AuditEntry] = ()) -> None:
        """Set a stored run's status; log ``audit``."""
        with self._lock:
            run = self._run(run_id)
            run.status = status
            run.ended = dt.datetime.now(dt.UTC).timestamp()
            self.append_audit(audit)

    def delete_run(self, run_id: str, audit: AuditEntry) -> list[str]:
        """Remove a run and its child runs (their records and spans too); log ``audit``."""
        with self._lock:
            self._run(run_id)
            ids = sorted(r for r in self._runs if r == run_id or r.startswith(run_id + "."))
            for gone in ids:
                del self._runs[gone]
            self.spans = [span for span in self.spans if span.get("run") not in ids]
            self.append_audit([audit])
            return ids

    # ---- the audit log -------------------------------------------------------------------
    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries, numbered and hash-chained."""
        if not entries:
            return
        with self._lock:
            head = (self._audit[-1]["seq"], self._audit[-1]["hash"]) if self._audit else None
            self._audit.extend(chain(entries, head))

    # ---- settings ------------------------------------------------------------------------
    def settings(self, fresh: bool = False) -> dict[str, Any]:
        """The store's settings (:mod:`fm_lab.store.settings`)."""
        with self._lock:
            return copy.deepcopy(self._settings)

    def set_setting(self, key: str, value: Any, actor: str) -> Any:
        """Store a checked setting (None: remove it), logged as ``store.setting``; return
        the value it had."""
        with self._lock:
            before = self._settings.pop(key, None)
            if value is not None:
                self._settings[key] = copy.deepcopy(value)
            self.append_audit([entry(SETTING_CHANGE, actor, path=key, before=before,
                                     after=value)])
        return before

    def audit_rows(self, run_id: str | None = None, actor: str | None = None,
                   action: str | None = None, since: dt.datetime | None = None,
                   limit: int | None = None) -> list[AuditRow]:
        """Audit rows, oldest first, filtered; ``limit``: only the newest ``limit``."""
        with self._lock:
            rows = [row.copy() for row in self._audit
                    if run_id in (None, row["run_id"]) and actor in (None, row["actor"])
                    and action in (None, row["action"])
                    and (since is None or row["acted_at"] >= since)]
        return rows if limit is None else rows[max(len(rows) - limit, 0):]

    # ---- liveness and cancel -------------------------------------------------------------
    def run_is_live(self, run_id: str) -> bool:
        """No other process can run a memory store's runs."""
        return False

    def request_cancel(self, run_id: str) -> None:
        """Remember a cancel request for :meth:`take_cancel_request`."""
        with self._lock:
            self._cancels.add(run_id)

    def take_cancel_request(self, run_id: str) -> bool:
        """True once after :meth:`request_cancel`."""
        with self._lock:
            if run_id in self._cancels:
                self._cancels.discard(run_id)
                return True
            return False

    # ---- reading -------------------------------------------------------------------------
    def _run(self, run_id: str) -> _Run:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunNotFoundError(f"no run {run_id!r} in {self.path}") from None

    def load_run(self, run_id: str) -> RunSnapshot:
        """The stored run, with each path's latest node record."""
        from fm_lab.spec.models import Workflow

        with self._lock:
            run = self._run(run_id)
            latest: dict[str, dict[str, Any]] = {}
            for record in run.nodes:
                latest.pop(record["node"], None)  # keep the order of the latest records
                latest[record["node"]] = record
            nodes = {node_id: _node_view(r) for node_id, r in latest.items()}
            resumes = {s["path"]: s["resume_data"] for s in run.suspensions
                       if s["resumed_seq"] is not None
                       and _status(nodes, s["path"].split("#", 1)[0]) != "succeeded"}
            spec = self._specs[run.workflow_id][run.version - 1][1]
            return copy.deepcopy(RunSnapshot(
                run_id=run_id, workflow=Workflow.from_dict(spec), status=run.status,
                inputs=run.inputs or {}, outputs=run.outputs, error=run.error, state=run.state,
                journal_seq=run.journal_seq, nodes=nodes, steps=dict(run.steps),
                resumes=resumes, parent_run_id=run.parent, trace_id=run.trace_id,
                policy=run.policy, forked_from=run.forked_from,
                forked_at_node=run.forked_at_node))

    def run_status(self, run_id: str) -> str:
        """The stored status."""
        with self._lock:
            return self._run(run_id).status

    def child_runs(self, run_id: str, statuses: tuple[str, ...] = ()) -> list[str]:
        """Child runs (ids ``<run_id>.<...>``), optionally only in ``statuses``."""
        with self._lock:
            return [r.run_id for r in self._runs.values() if r.run_id.startswith(run_id + ".")
                    and (not statuses or r.status in statuses)]

    def orphaned_runs(self) -> list[str]:
        """Top-level runs stored as running, oldest first."""
        with self._lock:
            left = [r for r in self._runs.values() if r.status == "running" and r.parent is None]
            return [r.run_id for r in sorted(left, key=lambda r: r.created)]

    def pending_rows(self, run_id: str | None = None,
                     with_children: bool = False) -> list[PendingRow]:
        """Suspensions waiting for data (the latest per path), oldest first."""
        with self._lock:
            rows: dict[tuple[str, str], PendingRow] = {}
            for run in self._runs.values():
                if run.status != "suspended" or not _selected(run.run_id, run_id, with_children):
                    continue
                for s in sorted(run.suspensions, key=lambda s: int(s["seq"])):
                    key = (run.run_id, s["path"])
                    rows.pop(key, None)
                    if s["resumed_seq"] is None:
                        rows[key] = _pending_row(run, s)
            return sorted(rows.values(), key=lambda r: r["since"])

    def pending(self, run_id: str | None = None, with_children: bool = False) -> pd.DataFrame:
        """:meth:`pending_rows` as a DataFrame."""
        return pending_frame(self.pending_rows(run_id, with_children))

    def latest_workflow(self, workflow_id: str) -> Workflow:
        """The newest stored version of ``workflow_id``."""
        return self.load_workflow(workflow_id)

    def load_workflow(self, workflow_id: str, version: int | None = None) -> Workflow:
        """Stored version ``version`` of ``workflow_id`` (None: the newest)."""
        from fm_lab.spec.models import Workflow

        with self._lock:
            versions = self._specs.get(workflow_id, [])
            rows = [(number, versions[number - 1][1])
                    for number in range(len(versions), 0, -1)]
            return Workflow.from_dict(copy.deepcopy(pick_version(workflow_id, version, rows)))

    def save_workflow(self, workflow: Workflow, saved_by: str | None) -> int:
        """Store ``workflow`` as a new version unless its content is stored already."""
        with self._lock:
            return self._save_spec(dict(spec_record(workflow, saved_by)))

    def cache_entries(self, workflow_id: str) -> dict[str, tuple[str, str | None, str, str]]:
        """The newest successful result per cache key among ``workflow_id``'s runs."""
        found: dict[str, tuple[float, tuple[str, str | None, str, str]]] = {}
        with self._lock:
            for run in self._runs.values():
                if run.workflow_id != workflow_id:
                    continue
                for r in run.nodes:
                    key = r.get("cache_key")
                    if key is None or r["status"] != "succeeded":
                        continue
                    ended = float(r.get("ended") or 0.0)
                    if key not in found or ended >= found[key][0]:
                        patch = codec.dumps(r["state_patch"]) if r.get("state_patch") else None
                        found[key] = (ended, (codec.dumps(r.get("output")), patch,
                                              run.run_id, r["node"]))
        return {key: entry for key, (_ended, entry) in found.items()}

    def runs(self, limit: int | None = 100, status: str | None = None) -> pd.DataFrame:
        """Recent runs, newest first."""
        import pandas as pd

        with self._lock:
            chosen = sorted((r for r in self._runs.values() if status in (None, r.status)),
                            key=lambda r: r.created, reverse=True)[:limit]
            return pd.DataFrame([{
                "run_id": r.run_id, "workflow_id": r.workflow_id,
                "workflow_version": r.version, "status": r.status,
                "created_at": _time(r.created), "ended_at": _time(r.ended),
                "duration_ms": None if r.ended is None else (r.ended - r.created) * 1000,
                "inputs": codec.dumps(r.inputs), "outputs": codec.dumps(r.outputs),
                "error": codec.dumps(r.error) if r.error else None,
                "parent_run_id": r.parent, "owner_pid": None, "started_by": r.started_by,
                "workflow_hash": r.workflow_hash, "policy": r.policy} for r in chosen],
                columns=list(RUN_COLUMNS))

    def workflows(self, workflow_id: str | None = None) -> pd.DataFrame:
        """Stored workflow versions, newest first, with who saved each and its hash."""
        import pandas as pd

        with self._lock:
            rows = [{"workflow_id": wf_id, "version": number, "hash": digest,
                     "name": spec.get("name"), "saved_by": by, "created_at": _time(saved)}
                    for wf_id, versions in self._specs.items()
                    if workflow_id in (None, wf_id)
                    for number, (digest, spec, by, saved) in enumerate(versions, start=1)]
        rows.sort(key=lambda r: (r["created_at"], r["version"]), reverse=True)
        return pd.DataFrame(rows, columns=list(WORKFLOW_COLUMNS))

    def node_executions(self, run_id: str, history: bool = False) -> pd.DataFrame:
        """One row per node of a run (every record with ``history=True``)."""
        import pandas as pd

        with self._lock:
            records = list(self._run(run_id).nodes)
        if not history:
            latest = {r["node"]: r for r in records}
            records = sorted(latest.values(), key=lambda r: int(r["seq"]))
        columns = ["node_id", "node_type", "status", "attempts", "started_at", "ended_at",
                   "duration_ms", "input", "output", "error", "cached_from", "seq"]
        return pd.DataFrame([{
            "node_id": r["node"], "node_type": r.get("type"), "status": r["status"],
            "attempts": r.get("attempts", 0), "started_at": _time(r.get("started")),
            "ended_at": _time(r.get("ended")),
            "duration_ms": (r["ended"] - r["started"]) * 1000
            if r.get("ended") is not None and r.get("started") is not None else None,
            "input": codec.dumps(r["input"]) if r.get("input") is not None else None,
            "output": codec.dumps(r.get("output")),
            "error": codec.dumps(r["error"]) if r.get("error") else None,
            "cached_from": codec.dumps(r["cached_from"]) if r.get("cached_from") else None,
            "seq": r["seq"]} for r in records], columns=columns)

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """A memory store has no SQL: say so and what to use instead."""
        raise StoreError(f"{self.path} has no SQL (it supports: runs); use a DuckDB store "
                         "(fm_lab.connect(':memory:')) to query traces and tables")


def _selected(candidate: str, run_id: str | None, with_children: bool) -> bool:
    if run_id is None or candidate == run_id:
        return True
    return with_children and candidate.startswith(run_id + ".")


def _status(nodes: dict[str, StoredNode], path: str) -> str | None:
    return nodes[path]["status"] if path in nodes else None


def _node_view(record: dict[str, Any]) -> StoredNode:
    """A node record as ``RunSnapshot.nodes`` holds it (the DuckDB store's form)."""
    leaf = record.get("leaf")
    return {"status": record["status"], "output": record.get("output"),
            "error": record.get("error") or None, "state_patch": record.get("state_patch") or None,
            "attempts": record.get("attempts", 0), "seq": record["seq"],
            "started": record.get("started"), "ended": record.get("ended"),
            "type": record.get("type"), "leaf": True if leaf is None else bool(leaf),
            "input": record.get("input"), "cache_key": record.get("cache_key"),
            "cached_from": record.get("cached_from") or None}


def _pending_row(run: _Run, suspension: dict[str, Any]) -> PendingRow:
    since = _time(suspension["since"])
    assert since is not None
    return PendingRow(
        run_id=run.run_id, workflow_id=run.workflow_id, node_id=suspension.get("node"),
        label=suspension.get("label"), path_id=suspension["path"],
        payload=codec.dumps(suspension.get("payload")), since=since,
        expires_at=_time(suspension.get("expires")), on_timeout=suspension.get("on_timeout"),
        resume_schema=codec.dumps(suspension.get("schema")),
        default_data=codec.dumps(suspension.get("default")),
        assignees=codec.dumps(suspension["assignees"]) if suspension.get("assignees") else None,
        roles=codec.dumps(suspension["roles"]) if suspension.get("roles") else None,
        payload_schema=(codec.dumps(suspension["payload_schema"])
                        if suspension.get("payload_schema") else None))
