"""The DuckDB store: workflows, runs and node executions, fed from run journals."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fm_lab.store import attachments, codec, env, group_timer, group_wait, migrations, run_groups
from fm_lab.store.audit import AUDIT_COLUMNS, AuditEntry, AuditRow, chain, entry, start_entry
from fm_lab.store.base import (
    JOURNAL,
    RUN_COLUMNS,
    RUNS,
    SHARDS,
    SHARED,
    SQL,
    WORKFLOW_COLUMNS,
    PendingRow,
    RunSnapshot,
)
from fm_lab.store.codec import dumps
from fm_lab.store.errors import (
    RunNotFoundError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
)
from fm_lab.store.ids import id_path
from fm_lab.store.ingest_order import apply_records, unstored
from fm_lab.store.journal import (
    Durability,
    Journal,
    JournalDamagedError,
    RunJournal,
    ends_run,
    locked_elsewhere,
    scan_journal,
    split_records,
    taken_if_dead,
)
from fm_lab.store.provenance import missing_run, note_created
from fm_lab.store.records import (
    STORED_NODE_COLUMNS,
    JournalRecord,
    NodeRecord,
    ResumeRecord,
    RunEndRecord,
    SpanRecord,
    StartRecord,
    StepRecord,
    SuspendRecord,
    fetch_dict,
    fetch_dicts,
    stored_node,
)
from fm_lab.store.schema import (
    FORK_VERSION,
    LATEST_VERSION,
    MIGRATIONS,
    PAYLOAD_SCHEMA_VERSION,
    POLICY_VERSION,
    SETTINGS_VERSION,
    TEAMS_VERSION,
    VIEWS_VERSION,
)
from fm_lab.store.settings import (
    SETTING_CHANGE,
    SettingsCache,
    load_mirror,
    read_settings,
    save_mirror,
    stricter,
    write_setting,
)
from fm_lab.store.sql_guard import refuse_audit_changes
from fm_lab.store.transaction import transaction
from fm_lab.store.versions import pick_version, spec_record

_log = logging.getLogger("fm_lab")
BACKGROUND_FILE_WAIT_S = 0.05  # the background storer's wait for a file another process has

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from fm_lab.spec.models import Workflow

_NODE_TYPES = {"run_id": "VARCHAR", "node_id": "VARCHAR", "seq": "BIGINT",
               "node_type": "VARCHAR", "status": "VARCHAR", "attempts": "INTEGER",
               "input": "VARCHAR", "output": "VARCHAR",
               "error": "VARCHAR", "state_patch": "VARCHAR", "started": "DOUBLE",
               "ended": "DOUBLE", "leaf": "BOOLEAN", "cache_key": "VARCHAR",
               "cached_from": "VARCHAR"}
# the runs columns a run's end sets (status, outputs, error, state, ended_at, journal_seq), as a
# running run has them
_END_DEFAULTS = ("running", None, None, None, None, 0)
# the columns a run's row is inserted with, and the DuckDB type of each value (times: epoch s)
_RUN_TYPES = {"run_id": "VARCHAR", "workflow_id": "VARCHAR", "workflow_version": "INTEGER",
              "status": "VARCHAR", "outputs": "VARCHAR", "error": "VARCHAR", "state": "VARCHAR",
              "ended_at": "DOUBLE", "journal_seq": "BIGINT", "inputs": "VARCHAR",
              "created_at": "DOUBLE", "owner_pid": "INTEGER", "owner_host": "VARCHAR",
              "parent_run_id": "VARCHAR", "trace_id": "VARCHAR", "started_by": "VARCHAR",
              "workflow_hash": "VARCHAR", "policy": "VARCHAR", "forked_from": "VARCHAR",
              "forked_at_node": "VARCHAR"}
_RUN_TIMES = ("ended_at", "created_at")
_AUDIT_TYPES = {"seq": "BIGINT", "acted_at": "TIMESTAMPTZ", "actor": "VARCHAR",
                "action": "VARCHAR", "run_id": "VARCHAR", "path": "VARCHAR", "before": "VARCHAR",
                "after": "VARCHAR", "prev_hash": "VARCHAR", "hash": "VARCHAR"}


def _insert_runs_sql(source: str | None) -> str:
    """The insert of runs rows: one row of parameters (``source`` None) or a relation's."""
    names = ", ".join(_RUN_TYPES)
    if source is None:
        marks = ", ".join("to_timestamp(?)" if c in _RUN_TIMES else "?" for c in _RUN_TYPES)
        return f"insert into runs ({names}) values ({marks})"
    picked = ", ".join(f"to_timestamp({c})" if c in _RUN_TIMES else c for c in _RUN_TYPES)
    return f"insert into runs ({names}) select {picked} from {source}"


def _end_values(record: RunEndRecord) -> tuple[Any, ...]:
    """The values of the runs columns ``record`` (a run's end) sets, in _END_DEFAULTS' order."""
    return (record["status"], dumps(record.get("outputs")),
            dumps(record["error"]) if record.get("error") else None,
            dumps(record.get("state")), record.get("ended"), record["seq"])


_HOLDER = re.compile(r"Conflicting lock is held in (?P<holder>.*?)(?:\. See|$)", re.S)
_AUDIT_LOCKS: dict[str, threading.Lock] = {}
_AUDIT_LOCKS_GUARD = threading.Lock()


def _audit_lock(path: str) -> threading.Lock:
    """The lock every store of this process on ``path`` takes around a transaction that
    appends to the audit log: a transaction reads the chain's head under snapshot isolation,
    so two at once (two ``Store`` objects on one file) would both extend the same head.
    Other processes cannot write the file meanwhile (DuckDB admits one writing process)."""
    with _AUDIT_LOCKS_GUARD:
        return _AUDIT_LOCKS.setdefault(path, threading.Lock())


def _inode_of(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


_WARNED: set[tuple[str, int, int]] = set()


def _warn_once(path: Path, message: str, *args: Any) -> None:
    """Log a journal's problem once per process (stores reopen files often)."""
    stat = path.stat()
    key = (str(path), stat.st_ino, stat.st_size)
    if key in _WARNED:
        return
    _WARNED.add(key)
    _log.warning(message, path, *args)


LOCK_TIMEOUT_ENV = "FM_LAB_LOCK_TIMEOUT_S"


def lock_timeout() -> float:
    """How long a store waits for a file another process holds: ``$FM_LAB_LOCK_TIMEOUT_S``
    (seconds), else 10."""
    return env.seconds(LOCK_TIMEOUT_ENV, 10.0)


class Store:
    """fm_lab's storage on one DuckDB file (or ``:memory:`` for tests).

    A file store opens DuckDB only while it reads or writes, so a notebook kernel, the CLI and
    batch workers can share one file; another process waits up to ``lock_timeout_s`` for it
    (default ``$FM_LAB_LOCK_TIMEOUT_S``, else 10 s).

    >>> store = Store(":memory:")
    >>> store.runs().empty
    True
    """

    supports: frozenset[str] = frozenset({RUNS, JOURNAL, SQL, SHARED, SHARDS})

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        read_only: bool = False,
        durability: Durability = "fsync",
        lock_timeout_s: float | None = None,
        group_delay_s: float | None = None,
    ) -> None:
        self.memory = str(path) == ":memory:"
        if self.memory:  # nothing another process can see or shard into
            self.supports = frozenset({RUNS, SQL})
        self.path = str(path) if self.memory else str(Path(path).expanduser().resolve())
        self.read_only = read_only
        self.durability: Durability = "none" if self.memory else durability
        self.lock_timeout_s = lock_timeout() if lock_timeout_s is None else lock_timeout_s
        # outside a hold, how long a finished short run may wait to be stored with others
        self.group_delay_s = (run_groups.group_delay() if group_delay_s is None
                              else group_delay_s)
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._leases = 0
        self._holds = 0
        self._owner: int | None = None  # the thread inside connection(), if any
        self._migrated = False
        self._views_stored = True
        self._applied: set[int] = set()  # migration numbers the file has (once opened)
        # (workflow id, content hash) -> version, as stored (stored versions never change;
        # like _migrated, kept for the file this store opened)
        self._versions: dict[tuple[str, str], int] = {}
        self._new_versions: dict[tuple[str, str], int] = {}  # saved, remembered once committed
        self._schema = migrations.report(self.path, 0, set(), (), MIGRATIONS)
        self._recovery_due = False
        self._cancels: set[str] = set()  # cancel requests of a memory store
        self._audit_lock = threading.Lock() if self.memory else _audit_lock(self.path)
        self._settings = SettingsCache()
        if not self.memory:
            if Path(self.path).is_dir():
                raise StoreCorruptError(self.path, "is a directory, not a DuckDB file")
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                if not read_only:
                    self.journal_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file where a folder should be, no permission, ...
                raise StoreError(f"cannot make the folders of the fm_lab store {self.path}: "
                                 f"{exc.strerror} ({exc.filename})") from None
            if not read_only:
                self.recover_journals()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    # ---- connections ---------------------------------------------------------------------
    @property
    def journal_dir(self) -> Path:
        return Path(self.path + ".journal")

    def journal_path(self, run_id: str) -> Path:
        """The run's journal file (the id checked: it never leaves :attr:`journal_dir`)."""
        return id_path(self.journal_dir, run_id, ".journal")

    def cancel_path(self, run_id: str) -> Path:
        """The file that asks the process running ``run_id`` to cancel it."""
        return id_path(self.journal_dir, run_id, ".cancel")

    @contextlib.contextmanager
    def connection(self, timeout_s: float | None = None, *,
                   settle: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection for the duration of the block (opened on demand, waiting up to
        ``timeout_s``, default ``lock_timeout_s``, for another process to release the file).
        Runs queued for the file (:meth:`defer`) are stored first, unless ``settle`` is False
        (a read that cannot concern them)."""
        if settle and run_groups.pending(self.path):
            self.store_groups()
        wait_s = self.lock_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + wait_s  # one wait, for the runs and the file
        # others' finished runs are waited for without this store's lock, which this
        # process's background thread may need meanwhile to store its own (that other
        # process may be waiting for them)
        if settle and self._con is None and not self.memory \
                and not attachments.attached(self.path) \
                and group_wait.wait_for_others(self.journal_dir, self._queued_here, wait_s) \
                and not self.read_only:
            self._recovery_due = True  # a dead process's finished runs: take them
        with self._lock:
            if self._con is None:
                self._con = self._open(max(0.0, deadline - time.monotonic()))
            self._leases += 1
            owner, self._owner = self._owner, threading.get_ident()
            try:
                if self._recovery_due:
                    self._recovery_due = False
                    self.recover_journals()
                yield self._con
            except Exception as exc:
                if self._damaged(exc):
                    raise StoreCorruptError.from_duckdb(self.path, exc) from None
                raise
            finally:
                self._owner = owner
                self._leases -= 1
                if not self.memory and self._leases == 0 and self._holds == 0:
                    self._release()

    def held_here(self) -> bool:
        """True while this thread is inside :meth:`connection` or :meth:`hold` (another
        thread asking for the store would wait for this one)."""
        return self._owner == threading.get_ident()

    @contextlib.contextmanager
    def hold(self) -> Iterator[Store]:
        """Keep the file open across many operations (a batch), releasing it afterwards.
        Short runs that end inside are stored in groups (:meth:`defer`), the last at the
        end of the block."""
        with self.connection():
            with self._lock:
                self._holds += 1
            try:
                try:
                    yield self
                except BaseException:
                    with contextlib.suppress(StoreError):  # the block's error is the one
                        self.store_groups()  # to see; what cannot go in stays queued
                    raise
                self.store_groups()
            finally:
                with self._lock:
                    self._holds -= 1
                if not self._holds and run_groups.pending(self.path):  # joined at its end
                    group_timer.schedule(self.path, self.store_groups, self.group_delay_s)

    def close(self) -> None:
        """Close the DuckDB connection (a memory store loses its data), after storing the
        runs queued for the file."""
        if not self.memory:
            self.store_groups()
        with self._lock:
            if self._con is not None:
                self._release()

    def _open(self, timeout_s: float) -> duckdb.DuckDBPyConnection:
        import duckdb

        if self.read_only and not self.memory and not os.path.exists(self.path):
            raise StoreError(f"no fm_lab store at {self.path} (nothing has been stored yet)")
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        while True:
            try:
                con = (
                    duckdb.connect(":memory:")
                    if self.memory
                    else attachments.lease(self.path, self.read_only)
                )
                break
            except (duckdb.IOException, attachments.AttachedReadOnlyError) as exc:
                if isinstance(exc, attachments.AttachedReadOnlyError):
                    holder = exc.holder
                else:
                    match = _HOLDER.search(str(exc))
                    if match is None:
                        raise StoreCorruptError.from_duckdb(self.path, exc) from None
                    holder = f"another process ({match['holder'].strip()})"
                if time.monotonic() >= deadline:
                    raise StoreLockedError(self.path, holder) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
            except duckdb.Error as exc:  # attaching failed: a damaged file or WAL
                if "file handle conflict" in str(exc).lower() and run_groups.in_fork():
                    raise StoreError(
                        f"the fm_lab store {self.path} was open in the process this one was "
                        "forked from (a fork inside store.hold(), or while another thread "
                        "used the store), and DuckDB cannot open it again here; start worker "
                        "processes with the 'spawn' method, or outside the hold") from None
                raise StoreCorruptError.from_duckdb(self.path, exc) from None
        try:
            if not self._migrated:
                self._migrate(con)
            self._attach_shards(con)
        except BaseException as exc:
            self._release(con)
            if isinstance(exc, duckdb.IOException | duckdb.InternalException
                          | duckdb.SerializationException):  # its first reads failed
                raise StoreCorruptError.from_duckdb(self.path, exc) from None
            raise
        return con

    def _damaged(self, exc: Exception) -> bool:
        """Whether ``exc`` is DuckDB failing to read this store's file (not a bad query)."""
        import duckdb

        return (not self.memory and self.path in str(exc) and isinstance(
            exc, duckdb.IOException | duckdb.InternalException | duckdb.SerializationException))

    def _release(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Close ``con`` (default: the open connection); a file is detached when no other
        store in this process uses it."""
        if con is None:
            con, self._con = self._con, None
        if con is None:
            return
        if self.memory:
            con.close()
        else:
            attachments.release(self.path, con)

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        """Apply the migrations the file lacks (none when read-only: their numbers are kept
        as pending, and queries adapt to the tables the file has)."""
        if not self.read_only:
            con.execute(migrations.META_TABLE)
        try:
            version, applied = migrations.read_state(con, MIGRATIONS)
        except Exception:  # read-only file without our tables yet
            version, applied = 0, set()
        migrations.refuse_newer(self.path, version, LATEST_VERSION)
        done: list[int] = []
        if not self.read_only:
            done = migrations.apply_missing(
                con, MIGRATIONS, applied, lambda: self._transaction(con, audited=False))
        if version == 0 and not self.read_only and not self.memory:
            # after the migrations: a process killed while making the file leaves no record,
            # so its next opener does not take the half-made file for a vanished one
            note_created(self.path, self.journal_dir)
        self._views_stored = VIEWS_VERSION in applied  # else (read-only, old file): temp views
        self._applied = applied
        self._mirror_settings(con)
        self._schema = migrations.report(self.path, version, applied, done, MIGRATIONS)
        self._migrated = True

    def _policy_sql(self, prefix: str = "") -> str:
        """The runs' ``policy`` column, or nulls in a file from before it (read-only)."""
        return (f"{prefix}policy" if POLICY_VERSION in self._applied
                else "null::varchar as policy")

    def _fork_sql(self) -> str:
        """The runs' fork columns, or nulls in a file from before them (read-only)."""
        return ("r.forked_from, r.forked_at_node" if FORK_VERSION in self._applied
                else "null::varchar as forked_from, null::varchar as forked_at_node")

    def migrate(self, apply: bool = True) -> migrations.MigrationReport:
        """Bring the file's tables up to date (a writable store does so when it opens the
        file) and report the schema version found when it was opened, the migrations
        applied since and any still pending. ``apply=False`` changes nothing: open the store
        ``read_only=True`` to see what a writable open would apply."""
        if apply and self.read_only:
            raise StoreError(f"{self.path} is open read-only: it cannot be migrated")
        if not apply and self.read_only and not self.memory and not os.path.exists(self.path):
            return migrations.report(self.path, 0, set(), (), MIGRATIONS)
        with self.connection():  # opening migrates (read-only: reads what the file has)
            return self._schema

    @property
    def shard_dir(self) -> Path:
        """Where Dask batch workers write their Parquet shards (``<store>.batches``)."""
        return Path(self.path + ".batches")

    def _attach_shards(self, con: duckdb.DuckDBPyConnection) -> None:
        """Temp views ``all_runs``, ``all_node_executions``, ``all_spans``: the tables plus
        every Parquet shard written by batch workers (see :mod:`fm_lab.store.shards`)."""
        from fm_lab.store.shards import attach_views

        attach_views(con, None if self.memory else self.shard_dir, stored=self._views_stored)

    # ---- writing -------------------------------------------------------------------------
    def _save_spec(self, con: duckdb.DuckDBPyConnection, record: StartRecord) -> int:
        """Store a workflow spec if this exact content is new; return its version number."""
        workflow_id, digest = record["workflow_id"], record["hash"]
        known = self._versions.get((workflow_id, digest))
        if known is None:  # saved earlier in this transaction (a group of runs)
            known = self._new_versions.get((workflow_id, digest))
        if known is not None:
            return known
        row = con.execute(
            "select version from workflows where workflow_id = ? and hash = ?",
            [workflow_id, digest],
        ).fetchone()
        if row:  # committed before this transaction: safe to remember
            self._versions[workflow_id, digest] = int(row[0])
            return int(row[0])
        latest = con.execute(
            "select max(version) from workflows where workflow_id = ?", [workflow_id]
        ).fetchone()
        version: int = max(record["version"], int(latest[0] or 0) + 1 if latest else 1)
        con.execute(
            "insert into workflows (workflow_id, version, hash, name, spec, saved_by) "
            "values (?, ?, ?, ?, ?, ?)",
            [workflow_id, version, digest, record["spec"].get("name"), dumps(record["spec"]),
             record.get("by")],
        ).fetchall()  # no result left open: a group's next insert may register Arrow
        self._new_versions[workflow_id, digest] = version
        return version

    @staticmethod
    def start_record(
        run_id: str,
        workflow: Workflow,
        inputs: dict[str, Any],
        parent_run_id: str | None = None,
    ) -> StartRecord:
        """The journal record that creates a run (stored with the run's first checkpoint, so a
        short run opens DuckDB once)."""
        spec = workflow.to_dict()
        return {
            "k": "start",
            "workflow_id": workflow.id,
            "version": workflow.version,
            "hash": workflow.content_hash(spec),
            "spec": spec,
            "inputs": inputs,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "parent": parent_run_id,
            "created": time.time(),
        }

    def _insert_run(
        self, con: duckdb.DuckDBPyConnection, run_id: str, record: StartRecord,
        end: RunEndRecord | None = None,
    ) -> AuditEntry | None:
        """Store the run's row (and its workflow version if new), as ``end`` left it if
        given; return its audit entry."""
        values, entry = self._run_row(con, run_id, record, end)
        con.execute(_insert_runs_sql(None), values)
        return entry

    def _run_row(self, con: duckdb.DuckDBPyConnection, run_id: str, record: StartRecord,
                 end: RunEndRecord | None) -> tuple[list[Any], AuditEntry | None]:
        """A run's row (:data:`_RUN_TYPES` order; its workflow version saved if new) and
        the audit entry of its start."""
        version = self._save_spec(con, record)
        ended = _END_DEFAULTS if end is None else _end_values(end)
        values = [run_id, record["workflow_id"], version, *ended, dumps(record["inputs"]),
                  record["created"], record["pid"], record["host"], record["parent"],
                  record.get("trace_id"), record.get("by"), record["hash"],
                  record.get("policy"), record.get("forked_from"),
                  record.get("forked_at_node")]
        return values, start_entry(run_id, record, version)

    def defer(self, run_id: str, records: Sequence[JournalRecord],
              texts: Mapping[int, bytes] | None = None,
              journal: RunJournal | None = None) -> bool:
        """Queue a whole short run (its records' journal ``texts`` included) for one ingest
        with others (:mod:`fm_lab.store.run_groups`): inside :meth:`hold`, on the holding
        thread, until the hold ends; outside one, for :attr:`group_delay_s` at most. False
        (nothing queued) when it must be ingested now. Its ``journal`` stays on disk, locked
        (the run looks live to other processes, which wait for it before they open the
        file), until its group is stored."""
        held = self._holds > 0
        if self.memory or self.read_only or not isinstance(journal, Journal) \
                or (not self.held_here() if held else self.group_delay_s <= 0
                    or run_groups.in_fork() or group_timer.closing()) \
                or not run_groups.fits(records):
            return False
        run = run_groups.Deferred.of(run_id, records, texts or {})
        if run is None:
            return False
        if run_groups.full(self.path):  # stored before this run joins (its journal is open)
            try:
                self.store_groups()
            except StoreError as exc:  # queued again: the hold's end or the next read says it
                _log.warning("%s", exc)
            if run_groups.full(self.path, run_groups.OVERFULL):
                return False  # the group stays as big as it may be: this run goes alone
        run_groups.add(self.path, dataclasses.replace(run, lock=journal.keep_lock()))
        if not held:
            group_timer.schedule(self.path, self.store_groups, self.group_delay_s)
        return True

    def store_groups(self, wait: bool | float = True) -> bool:
        """Ingest the runs queued for this file (by any store of it in this process) in one
        transaction, then remove their journals. If that fails (or is interrupted) they are
        queued again, each safe in its journal, and the error is raised. A read-only store
        leaves them to the writable one that queued them (it waits for a group on its way
        in, and reads the file without those still queued). ``wait``: how long to wait for
        another thread using this store (True: as long as it takes; False: not at all, for the
        background thread, which also waits for no other process's file; a number: seconds);
        False, storing nothing, when that is not enough."""
        if self.read_only:  # the writable store that queued them stores them now, unless
            if not attachments.attached(self.path):  # this process has the file read-only
                try:
                    group_timer.store_now(self.path)
                except StoreError as exc:  # the read goes on without them
                    _log.debug("%s", exc)
            run_groups.wait_stored(self.path)
            return True
        if not run_groups.pending(self.path):
            return True
        background = wait is False
        if background and (self._holds or attachments.attached_read_only(self.path)):
            return bool(self._holds)  # held: its end stores them; read-only here: later
        acquired = (self._lock.acquire(blocking=False) if background
                    else self._lock.acquire() if wait is True
                    else self._lock.acquire(timeout=float(wait)))
        if not acquired:
            return False
        try:
            self._store_queued(BACKGROUND_FILE_WAIT_S if background
                               else None if wait is True else float(wait))
        except StoreLockedError:
            if not background:
                raise
            return False  # another process has the file: tried again later
        finally:
            self._lock.release()
        return True

    def _store_queued(self, file_wait_s: float | None = None) -> None:
        with run_groups.storing(self.path) as runs:
            runs[:] = [run for run in runs if self._journal_kept(run)]
            if not runs:
                return  # stored by another thread meanwhile: now in the file
            try:
                with self.connection(file_wait_s, settle=False) as con:
                    self._store_group(con, runs)
            except BaseException as exc:
                if isinstance(exc, StoreError) or not isinstance(exc, Exception):
                    run_groups.put_back(self.path, runs)
                    raise
                # something in one run the group could not take: each alone, as a recovery
                # would; what still fails stays queued
                failed = self._store_one_by_one(runs)
                run_groups.put_back(self.path, failed)
                if failed:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise StoreError(
                        f"storing {len(failed)} finished runs in {self.path} failed "
                        f"({type(exc).__name__}: {first}); they stay queued, each safe in its "
                        "journal, and are tried again at the next use of the store or its "
                        "next open") from exc
                return
            for run in runs:
                self._drop_journal(run)

    def _store_one_by_one(self, runs: list[run_groups.Deferred]) -> list[run_groups.Deferred]:
        """Ingest each run alone (a group failed); return those that failed too."""
        failed = []
        for run in runs:
            try:
                self.ingest(run.run_id, run.records(), texts=run.texts)
            except Exception:
                failed.append(run)
                continue
            self._drop_journal(run)
        return failed

    def _journal_kept(self, run: run_groups.Deferred) -> bool:
        """Whether a queued run's journal is still the file it locked; if it was deleted
        (the store's folder removed meanwhile), the run is forgotten, not stored (in a new
        file at the same path, it would come back from nowhere)."""
        if run.lock is None or os.fstat(run.lock).st_ino == _inode_of(self.journal_path(
                run.run_id)):
            return True
        _log.warning("the journal of run %s was deleted before the run was stored in %s: "
                     "the run is not stored", run.run_id, self.path)
        run.release()
        return False

    def _drop_journal(self, run: run_groups.Deferred) -> None:
        """Remove a stored run's journal (the lock its group kept, if it is this file's) and
        let go of its lock."""
        path = self.journal_path(run.run_id)
        try:
            if run.lock is not None and os.fstat(run.lock).st_ino == _inode_of(path):
                path.unlink(missing_ok=True)
        finally:
            run.release()

    def _store_group(self, con: duckdb.DuckDBPyConnection,
                     runs: list[run_groups.Deferred]) -> None:
        """Insert ``runs`` (each its start to its end): one statement per table for all of
        them. A run the file has already (a recovery ingested its journal meanwhile) takes
        :meth:`ingest`, which skips what is stored."""
        from fm_lab.store.columns import relation
        from fm_lab.store.span_table import insert_columns, short_columns

        stored = {str(r[0]) for r in con.execute(
            "select run_id from runs where run_id in (select unnest(?::varchar[]))",
            [[r.run_id for r in runs]]).fetchall()}
        fresh = [r for r in runs if r.run_id not in stored]
        self._new_versions.clear()
        if fresh:
            with self._transaction(con, audited=True):
                rows, audit, run_ids, nodes = [], [], [], []
                spans: dict[str, list[Any]] = {}
                for run in fresh:
                    records = run.records()
                    start = cast("StartRecord", records[0])
                    end = cast("RunEndRecord", records[-1])
                    values, entry = self._run_row(con, run.run_id, start, end)
                    rows.append(values)
                    audit += [entry] if entry is not None else []
                    ran, traced, _ = split_records(records)
                    run_ids += [run.run_id] * len(ran)
                    nodes += ran
                    for name, column in short_columns(run.run_id, start["workflow_id"], ran,
                                                      traced, run.texts).items():
                        spans.setdefault(name, []).extend(column)
                cols = dict(zip(_RUN_TYPES, (list(c) for c in zip(*rows, strict=True)),
                                strict=True))
                with relation(con, "_fm_runs", cols, _RUN_TYPES) as (source, params):
                    con.execute(_insert_runs_sql(source), params).fetchall()
                if nodes:
                    self._insert_node_rows(con, run_ids, nodes)
                insert_columns(con, spans)
                self._append_audit(con, audit)
            self._versions.update(self._new_versions)
        for run in runs:
            if run.run_id in stored:
                self.ingest(run.run_id, run.records(), texts=run.texts)

    @contextlib.contextmanager
    def _transaction(self, con: duckdb.DuckDBPyConnection, audited: bool) -> Iterator[None]:
        """One transaction; ``audited``: it may append to the audit log (see
        :func:`_audit_lock`)."""
        with self._audit_lock if audited else contextlib.nullcontext(), transaction(con):
            yield

    @staticmethod
    def _append_audit(con: duckdb.DuckDBPyConnection, entries: Sequence[AuditEntry]) -> None:
        """Append ``entries`` after the chain's head (inside an audited transaction)."""
        if not entries:
            return
        head = con.execute("select seq, hash from audit_log order by seq desc limit 1").fetchone()
        rows = [[values[column] for column in AUDIT_COLUMNS] for values in
                map(dict, chain(entries, (int(head[0]), str(head[1])) if head else None))]
        names = ", ".join(AUDIT_COLUMNS)
        if len(rows) == 1:  # a run's start
            con.execute(f"insert into audit_log ({names}) values "
                        f"({', '.join('?' * len(AUDIT_COLUMNS))})", rows[0])
            return
        from fm_lab.store.columns import relation

        cols = dict(zip(AUDIT_COLUMNS, (list(c) for c in zip(*rows, strict=True)), strict=True))
        with relation(con, "_fm_audit", cols, _AUDIT_TYPES) as (source, params):
            con.execute(f"insert into audit_log ({names}) select {names} from {source}",
                        params).fetchall()

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to the audit log, numbered and hash-chained."""
        with self.connection() as con, self._transaction(con, audited=True):
            self._append_audit(con, entries)

    @property
    def file_missing(self) -> bool:
        """True for a file store whose file is not there (yet, or any more): readers answer
        empty rather than create it. Finished runs on their way in (queued here, or by
        another process) are waited for first: the first runs make the file."""
        if self.memory or Path(self.path).exists():
            return False
        if run_groups.pending(self.path):
            self.store_groups()
        if self.journal_dir.is_dir() and group_wait.wait_for_others(
                self.journal_dir, self._queued_here, self.lock_timeout_s) \
                and not self.read_only:
            self.recover_journals()  # a dead process's finished runs make the file
        return not Path(self.path).exists()

    def _queued_here(self, run_id: str) -> bool:
        return run_groups.queued(self.path, run_id)

    # ---- settings ------------------------------------------------------------------------
    def settings(self, fresh: bool = False) -> dict[str, Any]:
        """The store's settings (:mod:`fm_lab.store.settings`), read at most every few
        seconds (``fresh``: now)."""
        return self._settings.get(self._read_settings, fresh)

    @property
    def settings_path(self) -> Path:
        """The copy of the settings that runs read (the file may be held by another
        process; a run must not wait for it): rewritten after each change and on open."""
        return self.journal_dir / "settings.json"

    def _read_settings(self) -> dict[str, Any]:
        if not self.memory:
            return load_mirror(self.settings_path)
        with self.connection() as con:
            return read_settings(con) if SETTINGS_VERSION in self._applied else {}

    def set_setting(self, key: str, value: Any, actor: str) -> Any:
        """Store a checked setting (None: remove it), logged as ``store.setting``; return
        the value it had."""
        with self.connection() as con:
            if self._mirrored:  # until the table and its copy agree: what both allow
                now = read_settings(con)
                after = {k: v for k, v in {**now, key: value}.items() if v is not None}
                save_mirror(self.settings_path, stricter(now, after))
            with self._transaction(con, audited=True):
                before = write_setting(con, key, value, actor)
                self._append_audit(con, [entry(SETTING_CHANGE, actor, path=key,
                                               before=before, after=value)])
            self._mirror_settings(con)
        self._settings.clear()
        return before

    @property
    def _mirrored(self) -> bool:
        """Whether this store keeps :attr:`settings_path` (a writable file store)."""
        return not self.memory and not self.read_only and SETTINGS_VERSION in self._applied

    def _mirror_settings(self, con: duckdb.DuckDBPyConnection) -> None:
        """Bring :attr:`settings_path` in line with the table (a crash between the two is
        mended by the next writable open)."""
        if self._mirrored:
            save_mirror(self.settings_path, read_settings(con))

    def audit_rows(self, run_id: str | None = None, actor: str | None = None,
                   action: str | None = None, since: dt.datetime | None = None,
                   limit: int | None = None) -> list[AuditRow]:
        """Audit rows, oldest first, filtered; ``limit``: only the newest ``limit``."""
        if self.file_missing:
            return []
        clauses, params = [], []
        for column, op, value in (("run_id", "=", run_id), ("actor", "=", actor),
                                  ("action", "=", action), ("acted_at", ">=", since)):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        where = f"where {' and '.join(clauses)}" if clauses else ""
        limit_sql = f"limit {int(limit)}" if limit is not None else ""
        with self.connection() as con:
            if TEAMS_VERSION not in self._applied:  # a read-only file from before the log
                return []
            rows = fetch_dicts(con.execute(
                f"select * from (select {', '.join(AUDIT_COLUMNS)} from audit_log {where} "
                f"order by seq desc {limit_sql}) as newest order by seq", params))
        return rows  # type: ignore[return-value]

    def claim_run(self, run_id: str, audit: Sequence[AuditEntry] = ()) -> None:
        """Mark an existing run ``running`` and owned by this process (resume)."""
        with self.connection() as con, self._transaction(con, audited=bool(audit)):
            con.execute(
                "update runs set status = 'running', owner_pid = ?, owner_host = ?, "
                "ended_at = null, error = null where run_id = ?",
                [os.getpid(), socket.gethostname(), run_id],
            )
            self._append_audit(con, audit)

    def open_journal(self, run_id: str, new: bool = False) -> RunJournal | None:
        """The run's journal (None for a memory store, which keeps nothing across processes)."""
        if self.memory:
            return None
        if not new and run_groups.queued(self.path, run_id):
            self.store_groups()  # a queued run resumed: its rows go in, its journal ends
        return Journal(self.journal_path(run_id), self.durability)

    def ingest(
        self,
        run_id: str,
        records: Sequence[JournalRecord],
        wait: bool = True,
        texts: Mapping[int, bytes] | None = None,
    ) -> None:
        """Write journal records (node results, run end) to DuckDB in one transaction.

        ``wait=False`` raises :class:`StoreLockedError` at once if another process holds the
        file (the records are safe in the journal; ingest them later). ``texts``: span
        records' JSON text as the journal wrote it, by ``seq``, which spares encoding them
        again. A ``run_id`` that names no run (a standalone trace's journal key, see
        :mod:`fm_lab.tracing.standalone`) stores spans without a run, replacing any stored
        copy (a re-ingest after a crash)."""
        if not records:
            return
        # a write: it needs no other process's queued runs (a recovery holding a dead
        # process's journal must not wait for another recovery's)
        with self.connection(None if wait else 0.0, settle=False) as con:
            row = fetch_dict(con.execute("select journal_seq from runs where run_id = ?",
                                         [run_id]))
            fresh = unstored(records, int(row["journal_seq"]) if row else 0)
            if not fresh:
                return
            nodes, spans, others = split_records(fresh)
            is_run = row is not None or any(r["k"] == "start" for r in others)
            audited = any(r["k"] in ("start", "resume") and "by" in r for r in others)
            workflow_id = next((r["workflow_id"] for r in others if r["k"] == "start"), None)
            self._new_versions.clear()
            with self._transaction(con, audited):
                audit = apply_records(
                    self, con, run_id, nodes, others,
                    lambda: self._insert_spans(con, run_id if is_run else None, nodes, spans,
                                               texts, workflow_id))
                self._append_audit(con, audit)
                if fresh[-1]["k"] != "run":  # else _end_run stored journal_seq
                    con.execute("update runs set journal_seq = ? where run_id = ?",
                                [fresh[-1]["seq"], run_id])
            self._versions.update(self._new_versions)

    @staticmethod
    def _insert_step(con: duckdb.DuckDBPyConnection, run_id: str, record: StepRecord) -> None:
        con.execute("insert into steps values (?, ?, ?, ?, ?, to_timestamp(?))",
                    [run_id, record["path"], record["name"], record["seq"],
                     dumps(record.get("result")), record["created"]])

    @staticmethod
    def _answer(con: duckdb.DuckDBPyConnection, run_id: str, record: ResumeRecord) -> bool:
        """Mark the suspension the resume record answers; False when it was answered before
        (an earlier answer written again by a later segment of the run)."""
        return bool(con.execute(
            "update suspensions set resumed_at = to_timestamp(?), resumed_seq = ?, "
            "resume_data = ?, resumed_by = ? where run_id = ? and path = ? "
            "and resumed_at is null returning path",
            [record["at"], record["seq"], dumps(record.get("data")), record.get("by"), run_id,
             record["path"]],
        ).fetchall())

    def _insert_nodes(
        self, con: duckdb.DuckDBPyConnection, run_id: str, nodes: list[NodeRecord]
    ) -> None:
        self._insert_node_rows(con, [run_id] * len(nodes), nodes)

    @staticmethod
    def _insert_node_rows(con: duckdb.DuckDBPyConnection, run_ids: list[str],
                          nodes: list[NodeRecord]) -> None:
        """Insert node records, ``run_ids[i]`` being the run of ``nodes[i]``."""
        from fm_lab.store.columns import relation

        cols: dict[str, list[Any]] = {
            "run_id": run_ids,
            "node_id": [r["node"] for r in nodes],
            "seq": [r["seq"] for r in nodes],
            "node_type": [r.get("type") for r in nodes],
            "status": [r["status"] for r in nodes],
            "attempts": [r.get("attempts", 0) for r in nodes],
            "input": [dumps(r["input"]) if r.get("input") is not None else None for r in nodes],
            "output": ["null" if r.get("output") is None else dumps(r["output"]) for r in nodes],
            "error": [dumps(r["error"]) if r.get("error") else None for r in nodes],
            "state_patch": [dumps(r["state_patch"]) if r.get("state_patch") else None
                            for r in nodes],
            "started": [r.get("started") for r in nodes],
            "ended": [r.get("ended") for r in nodes],
            "leaf": [r.get("leaf") for r in nodes],
            "cache_key": [r.get("cache_key") for r in nodes],
            "cached_from": [dumps(r["cached_from"]) if r.get("cached_from") else None
                            for r in nodes],
        }
        with relation(con, "_fm_nodes", cols, _NODE_TYPES) as (source, params):
            con.execute(
                "insert into node_executions select run_id, node_id, seq, node_type, status, "
                "attempts, input, output, error, state_patch, to_timestamp(started), "
                "to_timestamp(ended), (ended - started) * 1000, leaf, cache_key, cached_from "
                f"from {source}", params,
            ).fetchall()

    def _insert_spans(
        self,
        con: duckdb.DuckDBPyConnection,
        run_id: str | None,
        nodes: list[NodeRecord],
        spans: list[SpanRecord],
        texts: Mapping[int, bytes] | None,
        workflow_id: str | None = None,
    ) -> None:
        """Spans of a run (``run_id``) or, with None, of a standalone trace. ``workflow_id``
        is given for a run this ingest created (else looked up)."""
        from fm_lab.store.span_table import insert_split

        if run_id is None:
            insert_split(con, None, None, nodes, spans, texts=texts, replace=True)
            return
        new_run = workflow_id is not None
        if workflow_id is None:
            run = fetch_dict(con.execute("select workflow_id from runs where run_id = ?",
                                         [run_id]))
            workflow_id = run["workflow_id"] if run else None
        insert_split(con, run_id, workflow_id, nodes, spans, texts=texts, new_run=new_run)

    def _insert_suspension(
        self, con: duckdb.DuckDBPyConnection, run_id: str, record: SuspendRecord
    ) -> None:
        con.execute(
            "insert into suspensions (run_id, path, node_id, seq, label, payload, resume_schema,"
            " since, expires_at, on_timeout, default_data, assignees, roles, payload_schema)"
            " values (?, ?, ?, ?, ?, ?, ?, to_timestamp(?), case when ? is null then null else"
            " to_timestamp(?) end, ?, ?, ?, ?, ?)",
            [
                run_id,
                record["path"],
                record.get("node"),
                record["seq"],
                record.get("label"),
                dumps(record.get("payload")),
                dumps(record.get("schema")),
                record["since"],
                record.get("expires"),
                record.get("expires"),
                record.get("on_timeout"),
                dumps(record.get("default")),
                dumps(record["assignees"]) if record.get("assignees") else None,
                dumps(record["roles"]) if record.get("roles") else None,
                dumps(record["payload_schema"]) if record.get("payload_schema") else None,
            ],
        )

    def _end_run(self, con: duckdb.DuckDBPyConnection, run_id: str, record: RunEndRecord) -> None:
        con.execute(  # journal_seq too: the run's end is usually an ingest's last record
            "update runs set status = ?, outputs = ?, error = ?, state = ?, "
            "ended_at = to_timestamp(?), journal_seq = ? where run_id = ?",
            [*_end_values(record), run_id],
        )

    def run_is_live(self, run_id: str) -> bool:
        """True while a process runs ``run_id`` (it holds the run's journal lock)."""
        if self.memory or run_groups.queued(self.path, run_id):
            return False  # a queued run has ended; only its journal is held, until stored
        path = self.journal_path(run_id)
        # ended in another process, which stores it a moment later: not live
        return locked_elsewhere(path) and not ends_run(path)

    def recover_later(self) -> None:
        """Ingest leftover journals the next time this process opens the file."""
        self._recovery_due = True

    def recover_journals(self, run_id: str | None = None) -> list[str]:
        """Ingest journals left by dead processes (all, or ``run_id``'s); return their runs.
        A damaged journal is left in place, untouched, for :meth:`adopt_journal` (a resume)
        to report."""
        if self.memory or not self.journal_dir.exists():
            return []
        if run_id is None or run_groups.queued(self.path, run_id):
            self.store_groups()  # queued runs' journals are this process's, not a dead one's
        paths = (
            [self.journal_path(run_id)]
            if run_id
            else sorted(self.journal_dir.glob("*.journal"))
        )
        recovered = []
        for path in paths:
            with taken_if_dead(path) as fd:
                if fd is None:
                    continue
                if os.fstat(fd).st_ino != _inode_of(path):
                    continue  # its run finished and removed it between our open and lock
                scan = scan_journal(path)
                if scan.damage:
                    _warn_once(path, "journal %s is damaged (%s); its run is left as it is "
                               "until it is resumed",
                               "; ".join(d.describe() for d in scan.damage))
                    continue
                if scan.torn_tail:
                    _warn_once(path, "the last record of journal %s was torn (a write cut "
                               "short by a crash or a full disk) and is dropped")
                self.ingest(path.stem, scan.records, texts=scan.texts)
                self._mark_drained(path.stem)
                path.unlink(missing_ok=True)
                recovered.append(path.stem)
        for stale in self.journal_dir.glob("*.cancel"):  # requests for runs no longer live
            if not (self.journal_dir / f"{stale.stem}.journal").exists():
                stale.unlink(missing_ok=True)
        return recovered

    def _mark_drained(self, run_id: str) -> None:
        """A dead process's run whose journal is now wholly stored: no process owns it, so a
        later resume that finds no journal knows nothing was lost."""
        with self.connection(settle=False) as con:
            con.execute("update runs set owner_pid = null where run_id = ? and status = "
                        "'running'", [run_id])

    def adopt_journal(self, run_id: str, journal: RunJournal, force: bool = False) -> list[str]:
        """Store what ``journal`` (locked by this process, about to continue the run) holds
        from earlier segments. Raises :class:`JournalDamagedError`, storing nothing, when the
        journal is damaged or missing where it may have held committed work, unless
        ``force``: then the intact records are stored, the damaged file is kept beside it as
        ``<run>.journal-damaged-<ms>`` and the journal starts afresh. Returns warnings."""
        if not isinstance(journal, Journal):
            raise TypeError(f"{self.path} adopts its own journal files, not {journal!r}")
        scan = scan_journal(journal.path)
        if not scan.records and self.file_missing:
            return []  # nothing to store, and no file to make: the caller finds no run
        with self.connection() as con:
            row = fetch_dict(con.execute(
                "select journal_seq, status, owner_pid from runs where run_id = ?", [run_id]))
        stored_seq = int(row["journal_seq"]) if row else 0
        losses = scan.losses(stored_seq)
        gap = scan.gap_before(stored_seq) if row else None
        problems = [d.describe() for d in [*([gap] if gap else []), *losses]]
        if (journal.created and row is not None and row["status"] == "running"
                and row["owner_pid"] is not None):
            problems.append(f"{journal.path.name} is missing, though the process that ran the "
                            "run died before storing its records")
        if problems and not force:
            raise JournalDamagedError(
                f"run {run_id}: its journal is damaged ({'; '.join(problems)}), so resuming "
                "could re-run work that was already done; nothing was changed. Resume with "
                f"force=True (fm-lab resume {run_id} --force) to continue from what is intact"
            )
        self.ingest(run_id, scan.records, texts=scan.texts)
        notes = [f"run {run_id}: resumed despite a damaged journal: {p}" for p in problems]
        if scan.torn_tail:
            notes.append(f"run {run_id}: the last record of {journal.path.name} was torn (a "
                         "write cut short by a crash or a full disk) and is dropped")
        if scan.damage or scan.torn_tail:
            if problems:
                kept = journal.path.with_name(
                    f"{journal.path.name}-damaged-{int(time.time() * 1000)}")
                kept.write_bytes(journal.path.read_bytes())
                notes.append(f"run {run_id}: the damaged journal is kept as {kept}")
            journal.reset()  # its intact records are stored; go on from a clean file
        return notes

    # ---- reading -------------------------------------------------------------------------
    def load_run(self, run_id: str) -> RunSnapshot:
        """The stored run: workflow, state, each path's latest committed result, journaled
        steps, and resume data not yet consumed by a finished node."""
        from fm_lab.spec.models import Workflow

        self._check_stored(run_id)
        with self.connection() as con:
            run = fetch_dict(con.execute(
                "select r.status, r.inputs, r.outputs, r.error, r.state, r.journal_seq, w.spec, "
                f"r.parent_run_id, r.trace_id, {self._policy_sql('r.')}, {self._fork_sql()} "
                "from runs r join "
                "workflows w "
                "on w.workflow_id = r.workflow_id "
                "and w.version = r.workflow_version where r.run_id = ?",
                [run_id],
            ))
            if run is None:
                raise RunNotFoundError(self._missing(run_id))
            node_rows = fetch_dicts(con.execute(
                f"select {STORED_NODE_COLUMNS} from node_executions "
                "where run_id = ? qualify row_number() over "
                "(partition by node_id order by seq desc) = 1 order by seq",
                [run_id],
            ))
            step_rows = con.execute(
                "select name, result from steps where run_id = ?", [run_id]
            ).fetchall()
            resume_rows = con.execute(
                "select path, resume_data from suspensions "
                "where run_id = ? and resumed_seq is not null",
                [run_id],
            ).fetchall()
        nodes = {r["node_id"]: stored_node(r) for r in node_rows}
        resumes = {  # answers for paths that have not succeeded since: they still apply
            path: codec.loads(data)
            for path, data in resume_rows
            if (node := nodes.get(path.split("#", 1)[0])) is None
            or node["status"] != "succeeded"
        }
        return RunSnapshot(
            run_id=run_id,
            workflow=Workflow.from_json(run["spec"]),
            status=run["status"],
            inputs=codec.loads(run["inputs"]) or {},
            outputs=codec.loads(run["outputs"]),
            error=codec.loads(run["error"]),
            state=codec.loads(run["state"]),
            journal_seq=int(run["journal_seq"]),
            nodes=nodes,
            steps={name: codec.loads(result) for name, result in step_rows},
            resumes=resumes,
            parent_run_id=run["parent_run_id"],
            trace_id=run["trace_id"],
            policy=run["policy"],
            forked_from=run["forked_from"],
            forked_at_node=run["forked_at_node"],
        )

    def run_status(self, run_id: str) -> str:
        """The stored status of a run (raises RunNotFoundError)."""
        self._check_stored(run_id)
        # a sweep asks this of every new run id: queued runs are stored only if it is one
        # (queued here, or by another process: its journal is there)
        with self.connection(settle=run_groups.queued(self.path, run_id)
                             or self.journal_path(run_id).exists()) as con:
            row = con.execute("select status from runs where run_id = ?", [run_id]).fetchone()
        if row is None:
            raise RunNotFoundError(self._missing(run_id))
        return str(row[0])

    def _check_stored(self, run_id: str) -> None:
        """Raise RunNotFoundError, without creating the file, when there is no store file."""
        if self.file_missing:
            raise RunNotFoundError(self._missing(run_id))

    def _missing(self, run_id: str) -> str:
        if self.memory:
            return f"no run {run_id!r} in {self.path}"
        return missing_run(run_id, self.path, self.journal_dir, self.journal_path(run_id))

    def set_status(self, run_id: str, status: str, audit: Sequence[AuditEntry] = ()) -> None:
        """Set a stored (not live) run's status, e.g. cancel a suspended run; log ``audit``
        in the same transaction."""
        with self.connection() as con, self._transaction(con, audited=bool(audit)):
            con.execute(
                "update runs set status = ?, ended_at = current_timestamp where run_id = ?",
                [status, run_id],
            )
            self._append_audit(con, audit)

    def delete_run(self, run_id: str, audit: AuditEntry) -> list[str]:
        """Remove a stored run and its child runs with everything keyed by their ids (node
        results, spans, suspensions, steps) and log ``audit``, in one transaction."""
        self._check_stored(run_id)
        with self.connection() as con, self._transaction(con, audited=True):
            ids = [str(r[0]) for r in con.execute(
                "select run_id from runs where run_id = ? or starts_with(run_id, ?) "
                "order by run_id", [run_id, run_id + "."]).fetchall()]  # not LIKE: ids have _
            if run_id not in ids:
                raise RunNotFoundError(self._missing(run_id))
            for table in ("node_executions", "spans", "suspensions", "steps", "runs"):
                con.execute(f"delete from {table} where run_id in (select unnest(?::varchar[]))",
                            [ids])
            self._append_audit(con, [audit])
        return ids

    def latest_workflow(self, workflow_id: str) -> Workflow:
        """The newest stored version of ``workflow_id``."""
        return self.load_workflow(workflow_id)

    def load_workflow(self, workflow_id: str, version: int | None = None) -> Workflow:
        """Stored version ``version`` of ``workflow_id`` (None: the newest)."""
        from fm_lab.spec.models import Workflow

        with self.connection() as con:
            rows = con.execute("select version, spec from workflows where workflow_id = ? "
                               "order by version desc", [workflow_id]).fetchall()
        return Workflow.from_json(pick_version(workflow_id, version, rows))

    def save_workflow(self, workflow: Workflow, saved_by: str | None) -> int:
        """Store ``workflow`` as a new version unless its content is stored already."""
        with self.connection() as con:
            self._new_versions.clear()
            with self._transaction(con, audited=False):
                version = self._save_spec(con, spec_record(workflow, saved_by))
            self._versions.update(self._new_versions)
        return version

    def pending(self, run_id: str | None = None, with_children: bool = False) -> pd.DataFrame:
        """Suspensions waiting for data, oldest first (of one run, optionally with its child
        runs, or of every suspended run)."""
        where, params = "", []
        if run_id is not None:
            where = "and (s.run_id = ?" + (" or s.run_id like ?" if with_children else "") + ")"
            params = [run_id, run_id + ".%"] if with_children else [run_id]
        with self.connection():
            return self.sql(
                "select s.run_id, r.workflow_id, s.node_id, s.label, s.path as path_id, "
                "s.payload, s.since, s.expires_at, s.on_timeout, s.resume_schema, "
                f"s.default_data, {self._teams('s.assignees', 's.roles')}, "
                f"{self._since(PAYLOAD_SCHEMA_VERSION, 's.payload_schema')} "
                "from suspensions s join runs r on r.run_id = s.run_id "
                f"where s.resumed_at is null and r.status = 'suspended' {where} "
                "qualify row_number() over (partition by s.run_id, s.path order by s.seq desc)"
                " = 1 order by s.since",
                params,
            )

    def _teams(self, *columns: str) -> str:
        """Columns of migration 8, or nulls under their names in a read-only file from before
        it (call inside :meth:`connection`, which reads the file's migrations)."""
        return self._since(TEAMS_VERSION, *columns)

    def _since(self, version: int, *columns: str) -> str:
        """``columns``, or nulls under their names in a read-only file from before migration
        ``version`` (call inside :meth:`connection`, which reads the file's migrations)."""
        if version in self._applied:
            return ", ".join(columns)
        return ", ".join(f"null as {column.rsplit('.', 1)[-1]}" for column in columns)

    def runs(self, limit: int | None = 100, status: str | None = None) -> pd.DataFrame:
        """Recent runs, newest first, as a DataFrame (with who started each and the content
        hash of the workflow it ran)."""
        where, params = ("where status = ?", [status]) if status else ("", [])
        limit_sql = f"limit {int(limit)}" if limit else ""
        with self.connection():
            columns = ", ".join(RUN_COLUMNS[:-3]).replace(
                "duration_ms", "epoch_ms(ended_at) - epoch_ms(created_at) as duration_ms")
            return self.sql(
                f"select {columns}, {self._teams(*RUN_COLUMNS[-3:-1])}, {self._policy_sql()} "
                f"from all_runs {where} order by created_at desc {limit_sql}",
                params,
            )

    def workflows(self, workflow_id: str | None = None) -> pd.DataFrame:
        """Stored workflow versions, newest first: who saved each (the user whose run stored
        it first) and its content hash, which ``runs()`` shows beside each run."""
        where, params = ("where workflow_id = ?", [workflow_id]) if workflow_id else ("", [])
        with self.connection():
            columns = ", ".join(c if c != "saved_by" else self._teams(c)
                                for c in WORKFLOW_COLUMNS)
            return self.sql(f"select {columns} from workflows {where} "
                            "order by created_at desc, workflow_id, version desc", params)

    def node_executions(self, run_id: str, history: bool = False) -> pd.DataFrame:
        """One row per node of a run (its latest execution; every attempt with history=True)."""
        latest = (
            ""
            if history
            else ("qualify row_number() over (partition by node_id order by seq desc) = 1")
        )
        return self.sql(
            "select node_id, node_type, status, attempts, started_at, ended_at, duration_ms, "
            "input, output, error, cached_from, seq from node_executions "
            f"where run_id = ? {latest} "
            "order by seq",
            [run_id],
        )

    def cache_entries(self, workflow_id: str) -> dict[str, tuple[str, str | None, str, str]]:
        """The newest successful result per cache key among the runs of ``workflow_id``:
        ``{key: (output JSON, state patch JSON, run_id, path)}``."""
        if self.file_missing:
            return {}
        with self.connection() as con:
            rows = con.execute(
                "select n.cache_key, n.output, n.state_patch, n.run_id, n.node_id "
                "from node_executions n join runs r on r.run_id = n.run_id "
                "where r.workflow_id = ? and n.cache_key is not null and n.status = 'succeeded' "
                "qualify row_number() over (partition by n.cache_key order by n.ended_at desc) = 1",
                [workflow_id],
            ).fetchall()
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL on the store and return a DataFrame (statements that would change the
        append-only audit log are refused: :mod:`fm_lab.store.sql_guard`)."""
        refuse_audit_changes(query)
        with self.connection() as con:
            return con.execute(query, params or []).df()

    # ---- the rest of the RunStore protocol (fm_lab.store.base) ---------------------------
    def request_cancel(self, run_id: str) -> None:
        """Ask the process running ``run_id`` to cancel it (a ``<run>.cancel`` file its
        runner checks on each tick)."""
        if self.memory:
            self._cancels.add(run_id)
        else:
            self.cancel_path(run_id).touch()

    def take_cancel_request(self, run_id: str) -> bool:
        """True (once) if a cancel file for ``run_id`` is there; removes it."""
        if self.memory:
            found = run_id in self._cancels
            self._cancels.discard(run_id)
            return found
        path = self.cancel_path(run_id)
        if not path.exists():
            return False
        path.unlink(missing_ok=True)  # consumed: it must not cancel a later resume
        return True

    def child_runs(self, run_id: str, statuses: tuple[str, ...] = ()) -> list[str]:
        """Ids of ``run_id``'s child runs, optionally only in ``statuses``."""
        if self.file_missing:
            return []
        where = f" and status in ({', '.join('?' * len(statuses))})" if statuses else ""
        with self.connection() as con:
            rows = con.execute(f"select run_id from runs where run_id like ?{where} "
                               "order by created_at", [run_id + ".%", *statuses]).fetchall()
        return [str(r[0]) for r in rows]

    def orphaned_runs(self) -> list[str]:
        """Top-level runs stored as running, oldest first."""
        if self.file_missing:
            return []
        with self.connection() as con:
            rows = con.execute("select run_id from runs where status = 'running' and "
                               "parent_run_id is null order by created_at").fetchall()
        return [str(r[0]) for r in rows]

    def pending_rows(self, run_id: str | None = None,
                     with_children: bool = False) -> list[PendingRow]:
        """:meth:`pending` as typed rows."""
        frame = self.pending(run_id, with_children)
        rows: list[PendingRow] = []
        for record in frame.to_dict("records"):
            # a column with only NULLs comes back as NaN: None, as the type says
            row = {str(k): None if isinstance(v, float) and v != v else v
                   for k, v in record.items()}
            for column in ("since", "expires_at"):
                value = row[column]
                row[column] = None if value is None or value != value else value.to_pydatetime()
            rows.append(row)  # type: ignore[arg-type]
        return rows
