"""The PostgreSQL store: one server shared by a team's kernels, CLI processes and workers.

``fm_lab.connect("postgresql://user@host/db")`` (or ``FM_LAB_STORE``) opens it through
psycopg 3 and a connection pool. It keeps what the DuckDB store keeps, in the same tables
(:mod:`fm_lab.store.pg_schema`), and differs where a server does better than a file:

- a run's records are committed straight into the tables (:mod:`fm_lab.store.pg_journal`),
  so every process sees a checkpoint as soon as it is durable and nothing waits for a file;
- which process runs a run is an advisory lock the server drops when that process dies
  (:mod:`fm_lab.store.pg_locks`), so any process on any machine recovers a killed run;
- a cancel request is a row, read by the running process at its next tick;
- with the pgvector extension in its database (created at open where the role may), it
  declares ``vectors``: agent memory and knowledge bases keep their vectors in its tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from fm_lab.store import codec, migrations, pg_commit, pg_start
from fm_lab.store.audit import (
    AUDIT_COLUMNS,
    AuditEntry,
    AuditRow,
    chain,
    entry,
    logs_entry,
    start_entry,
)
from fm_lab.store.base import (
    RUN_COLUMNS,
    RUNS,
    SHARED,
    SQL,
    VECTORS,
    WORKFLOW_COLUMNS,
    PendingRow,
    RunSnapshot,
    pending_frame,
)
from fm_lab.store.codec import dumps
from fm_lab.store.errors import RunNotFoundError, StoreError
from fm_lab.store.ingest_order import apply_records, unstored
from fm_lab.store.journal import split_records
from fm_lab.store.pg_journal import LeaseMissingError, PgJournal
from fm_lab.store.pg_locks import HELD, KEEPALIVE, RunLocks
from fm_lab.store.pg_password import split_password
from fm_lab.store.pg_pool import open_pool
from fm_lab.store.pg_rows import (
    COPY_SPANS_FROM,
    NODE_COLUMNS,
    SPAN_COLUMNS,
    NodeRows,
    json_text,
    node_rows,
    run_end,
    run_start,
    span_rows,
    timestamp,
)
from fm_lab.store.pg_schema import LATEST_VERSION, MIGRATIONS
from fm_lab.store.pg_sql import PgConnection, configure, pipelined_transaction
from fm_lab.store.pg_vectors import enable_pgvector
from fm_lab.store.records import (
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
from fm_lab.store.settings import SETTING_CHANGE, SettingsCache, read_settings, write_setting
from fm_lab.store.sql_guard import refuse_audit_changes
from fm_lab.store.urls import redacted
from fm_lab.store.versions import pick_version, spec_record

if TYPE_CHECKING:
    import pandas as pd
    import psycopg
    import psycopg_pool

    from fm_lab.spec.models import Workflow
    from fm_lab.store.journal import Durability, RunJournal

POOL_SIZE = int(os.environ.get("FM_LAB_PG_POOL", "4"))  # connections per process
_MIGRATION_LOCK = 0x666D5F6C6162  # "fm_lab": one migrating process at a time
_AUDIT_LOCK = 0x666D5F61756474  # "fm_audt": one transaction at a time extends the chain
_STORED_NODE = (
    "node_id, status, output, error, state_patch, attempts, seq, "
    "extract(epoch from started_at)::float8 as started, "
    "extract(epoch from ended_at)::float8 as ended, node_type, leaf, input, cache_key, "
    "cached_from")
_VIEWS = ("create or replace view all_runs as select * from runs; "
          "create or replace view all_node_executions as select * from node_executions; "
          "create or replace view all_spans as select * from spans;")
# the reads an ingest makes before it writes, sent together (one round trip in a pipeline)
_RUN_ROW = "select journal_seq, workflow_id, trace_id from runs where run_id = %s for update"
_WORKFLOW_LOCK = "select pg_advisory_xact_lock(hashtextextended('fm_lab.workflow:' || %s, 0))"
_SPEC_VERSIONS = ("select (select version from workflows where workflow_id = %s and hash = %s), "
                  "(select max(version) from workflows where workflow_id = %s)")
_AUDIT_HEAD = "select seq, hash from audit_log order by seq desc limit 1"


def open_postgres(url: str, *, read_only: bool = False,
                  durability: Durability = "fsync") -> PostgresStore:
    """The ``postgresql://`` opener of :func:`fm_lab.store.urls.open_store`."""
    return PostgresStore(url, read_only=read_only, durability=durability)


class PostgresStore:
    """fm_lab's storage on a PostgreSQL server (see the module docstring).

    ``durability="fsync"`` (the default) commits synchronously, as PostgreSQL does by default;
    ``"process"`` or ``"none"`` turn ``synchronous_commit`` off for this store's sessions: a
    crash of the server (not of this process) may then lose the last moments of commits.
    ``pgvector=False`` leaves the extension alone: the store then lacks ``vectors``.
    """

    supports = frozenset({RUNS, SQL, SHARED})
    memory = False
    default_policy = "restricted"  # a team store runs other people's workflows

    def __init__(self, url: str, *, read_only: bool = False, durability: Durability = "fsync",
                 pool_size: int = POOL_SIZE, pgvector: bool = True) -> None:
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise StoreError("a PostgreSQL store needs psycopg 3 and psycopg-pool: "
                             "pip install 'fm_lab[postgres]'") from None
        self.url = url
        self.path = redacted(url)
        self.read_only = read_only
        self.durability: Durability = durability
        self.pool_size = max(2, pool_size)
        self.locks = RunLocks(url, self.path, self._options())  # commits go there too
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._settings = SettingsCache()
        self._local = threading.local()  # this thread's held connection (hold())
        self._migrated = False
        self._pgvector = pgvector
        # (workflow_id, content hash) -> its stored version, once a commit stored or read it
        # (versions are only added): a start of a known version takes one round trip
        self._versions: dict[tuple[str, str], int] = {}
        self._schema = migrations.report(self.path, 0, set(), (), MIGRATIONS)
        self._connect_check()

    def __repr__(self) -> str:
        return f"PostgresStore({self.path!r})"

    # ---- connections ---------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        settings = []
        if self.durability != "fsync":
            settings.append("-c synchronous_commit=off")
        if self.read_only:
            settings.append("-c default_transaction_read_only=on")
        options: dict[str, Any] = {"autocommit": True, "application_name": "fm_lab",
                                   **KEEPALIVE}
        if settings:  # after the URL's own ``options`` (a search_path, say), not instead
            from psycopg.conninfo import conninfo_to_dict

            given = conninfo_to_dict(self.url).get("options")
            options["options"] = " ".join([*([str(given)] if given else []), *settings])
        return options

    def _pool_now(self) -> psycopg_pool.ConnectionPool[Any]:
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                # a forked child (a Dask or multiprocessing worker) opens its own
                self._pool = open_pool(
                    self.url, configure, min_size=1, max_size=self.pool_size,
                    kwargs=self._options(), name="fm_lab", timeout=30.0)
                self._pool_pid = os.getpid()
            return self._pool

    def _connect_check(self) -> None:
        """Connect once (migrating the tables) before any pool exists, so a server that
        cannot be used is one clear error at once, not a pool retrying in the background."""
        import psycopg

        try:
            conn = psycopg.connect(self.url, connect_timeout=15, **self._options())
        except psycopg.Error as exc:
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            hint = ""
            if "password" in first and split_password(self.url)[1] is None:
                hint = (" (this URL carries no password, as a batch hands it to its workers: "
                        "give this process one in PGPASSWORD, PGPASSFILE or ~/.pgpass)")
            raise StoreError(f"cannot open the PostgreSQL store {self.path}: "
                             f"{first.replace(self.url, self.path)}{hint}") from None
        with conn:
            configure(conn)
            con = PgConnection(conn)
            try:
                self._migrate(con)
                if self._pgvector and enable_pgvector(con, create=not self.read_only):
                    self.supports = self.supports | {VECTORS}
            finally:
                con.close()

    @contextlib.contextmanager
    def connection(self, timeout_s: float | None = None) -> Iterator[PgConnection]:
        """A pooled connection for the block (this thread's held one inside :meth:`hold`)."""
        held: PgConnection | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        import psycopg_pool

        # ``timeout_s`` is how long a DuckDB store waits for another process's file lock
        # (0: not at all); here nothing is locked, only a pooled connection may be busy
        wait = 30.0 if timeout_s is None else max(timeout_s, 10.0)
        try:
            with self._pool_now().connection(timeout=wait) as conn:
                con = PgConnection(conn)
                try:
                    if not self._migrated:
                        self._migrate(con)
                    yield con
                finally:
                    con.close()
        except psycopg_pool.PoolTimeout:
            raise StoreError(f"no connection to the PostgreSQL store {self.path} became free "
                             f"in time (pool of {self.pool_size}; FM_LAB_PG_POOL sets it)"
                             ) from None

    @contextlib.contextmanager
    def hold(self) -> Iterator[PostgresStore]:
        """Use one connection for this thread's operations in the block."""
        if getattr(self._local, "conn", None) is not None:
            yield self
            return
        with self.connection() as con:
            self._local.conn = con
            try:
                yield self
            finally:
                self._local.conn = None

    def held_here(self) -> bool:
        """Never blocking: other threads take other pooled connections."""
        return False

    def defer(self, run_id: str, records: Sequence[JournalRecord],
              texts: Mapping[int, bytes] | None = None,
              journal: RunJournal | None = None) -> bool:
        """Never: a run's commits stored its records as they came."""
        return False

    def close(self) -> None:
        """Close the pool and release this process's run locks."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.close()
        self.locks.close()

    def _migrate(self, con: PgConnection) -> None:
        """Apply the migrations this database lacks (one process at a time; none when
        read-only: they are reported as pending)."""
        if self.read_only:
            version, applied = self._schema_state(con)
            self._schema = migrations.report(self.path, version, applied, (), MIGRATIONS)
            self._migrated = True
            return
        with con.raw.transaction():
            con.execute("select pg_advisory_xact_lock(?)", [_MIGRATION_LOCK])
            con.execute(migrations.META_TABLE)
            version, applied = self._schema_state(con)
            done = migrations.apply_missing(con, MIGRATIONS, applied, contextlib.nullcontext)
            if done:
                con.execute(_VIEWS)  # `select *` views take the columns added since
        self._schema = migrations.report(self.path, version, applied, done, MIGRATIONS)
        self._migrated = True

    def _schema_state(self, con: PgConnection) -> tuple[int, set[int]]:
        """The database's schema version and applied migrations (a newer one is refused)."""
        try:
            version, applied = migrations.read_state(con, MIGRATIONS)
        except Exception as exc:  # no meta table: a read-only open of an empty database
            if self.read_only:
                raise StoreError(f"no fm_lab store in {self.path} (nothing stored yet; "
                                 "fm-lab store migrate makes its tables)") from exc
            raise
        migrations.refuse_newer(self.path, version, LATEST_VERSION)
        return version, applied

    def migrate(self, apply: bool = True) -> migrations.MigrationReport:
        """Bring the database's tables up to date (a writable store does so when it opens)
        and report the schema version found when it was opened, the migrations applied since
        and any still pending. ``apply=False`` changes nothing: open the store
        ``read_only=True`` to see what a writable open would apply."""
        if apply and self.read_only:
            raise StoreError(f"{self.path} is open read-only: it cannot be migrated")
        return self._schema  # the store migrated (or read the schema) when it connected

    # ---- writing a run -------------------------------------------------------------------
    def open_journal(self, run_id: str, new: bool = False) -> RunJournal | None:
        """The run's journal: its commits go into the tables; the run is locked for this
        process until the journal is closed (``RunLockedError`` while another holds it).
        ``new``: a run being started, taken by its first commit (its start, in the same round
        trip: ``RunLockedError`` comes from that commit then), with no earlier holder to wait
        for; its end gives it up in its commit's round trip too."""
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only: it cannot run workflows")
        return PgJournal(self, run_id, new=new)

    def settle(self, run_id: str) -> None:
        """Wait for a commit of ``run_id`` under way (by the process that held it before this
        one took its lock) to end, so what this process reads next includes it."""
        with self.connection() as con:  # one statement: its own transaction, one round trip
            con.execute("select 1 from runs where run_id = ? for update", [run_id])

    def still_owned(self, run_id: str, pid: int, host: str, through: int | None = None) -> bool:
        """True unless another process claimed ``run_id`` or ended it: it is stored as running
        by process ``pid`` on ``host``, or not stored yet; or (``through``) stored by that
        process through seq ``through`` (its own end, whose reply was lost)."""
        with self.connection() as con:
            row = con.execute("select status, owner_pid, owner_host, journal_seq from runs "
                              "where run_id = ?", [run_id]).fetchone()
        return row is None or (row[1] == pid and row[2] == host and (
            row[0] == "running" or (through is not None and int(row[3]) >= through)))

    def claim_run(self, run_id: str, audit: Sequence[AuditEntry] = ()) -> None:
        """Mark a stored run running and owned by this process (a resume), logging ``audit``
        in the same transaction; a cancel request left from before (the run was not live,
        so nobody took it) no longer applies."""
        with self.connection() as con, con.raw.transaction():
            con.execute("update runs set status = 'running', owner_pid = ?, owner_host = ?, "
                        "ended_at = null, error = null where run_id = ?",
                        [os.getpid(), socket.gethostname(), run_id])
            con.execute("delete from cancel_requests where run_id = ?", [run_id])
            self._append_audit(con, audit)

    # ---- the audit log -------------------------------------------------------------------
    @staticmethod
    def _audit_head(con: PgConnection) -> psycopg.Cursor[Any]:
        """Take the audit chain's lock and ask for its head (inside the caller's transaction,
        which holds the lock until it commits, so no other one extends the same head); in a
        pipeline both go with the statements sent before, read in the same round trip."""
        con.raw.execute("select pg_advisory_xact_lock(%s)", [_AUDIT_LOCK])
        return con.raw.execute(_AUDIT_HEAD)

    @classmethod
    def _append_audit(cls, con: PgConnection, entries: Sequence[AuditEntry],
                      head: psycopg.Cursor[Any] | None = None) -> None:
        """Append ``entries`` after the chain's head (``head``: asked for by
        :meth:`_audit_head` already), inside the caller's transaction."""
        if not entries:
            return
        found = (head or cls._audit_head(con)).fetchone()
        rows = chain(entries, (int(found[0]), str(found[1])) if found else None)
        con.executemany(
            f"insert into audit_log ({', '.join(AUDIT_COLUMNS)}) "
            f"values ({', '.join('?' * len(AUDIT_COLUMNS))})",
            [[values[column] for column in AUDIT_COLUMNS] for values in map(dict, rows)])

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to the audit log, numbered and hash-chained."""
        with self.connection() as con, con.raw.transaction():
            self._append_audit(con, entries)

    # ---- settings ------------------------------------------------------------------------
    def settings(self, fresh: bool = False) -> dict[str, Any]:
        """The store's settings (:mod:`fm_lab.store.settings`), read at most every few
        seconds (another process may change them; ``fresh``: now)."""
        return self._settings.get(self._read_settings, fresh)

    def _read_settings(self) -> dict[str, Any]:
        with self.connection() as con:
            return read_settings(con)

    def set_setting(self, key: str, value: Any, actor: str) -> Any:
        """Store a checked setting (None: remove it), logged as ``store.setting``; return
        the value it had."""
        with self.connection() as con, con.raw.transaction():
            before = write_setting(con, key, value, actor)
            self._append_audit(con, [entry(SETTING_CHANGE, actor, path=key, before=before,
                                           after=value)])
        self._settings.clear()
        return before

    def audit_rows(self, run_id: str | None = None, actor: str | None = None,
                   action: str | None = None, since: dt.datetime | None = None,
                   limit: int | None = None) -> list[AuditRow]:
        """Audit rows, oldest first, filtered; ``limit``: only the newest ``limit``."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("run_id", run_id), ("actor", actor), ("action", action)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("acted_at >= ?")
            params.append(since)
        where = f"where {' and '.join(clauses)}" if clauses else ""
        limit_sql = f"limit {int(limit)}" if limit is not None else ""
        with self.connection() as con:
            rows = fetch_dicts(con.execute(
                f"select * from (select {', '.join(AUDIT_COLUMNS)} from audit_log {where} "
                f"order by seq desc {limit_sql}) as newest order by seq", params))
        return rows  # type: ignore[return-value]

    def ingest(self, run_id: str, records: Sequence[JournalRecord], wait: bool = True,
               texts: Mapping[int, bytes] | None = None, lease: int | None = None) -> None:
        """Store journal records in one transaction, once each (by ``seq``); the run's row is
        locked meanwhile, so two writers of one run apply in turn. A ``run_id`` naming no
        run (a standalone trace) stores spans without a run, replacing any stored copy.
        ``lease``: the backend pid of the lock session that must hold the run for anything to
        be stored (``LeaseMissingError`` otherwise; see :mod:`fm_lab.store.pg_journal`).

        A few node and span records and a run's end go as one statement
        (:mod:`fm_lab.store.pg_commit`), a run's start of a workflow version this store has
        stored or read in one round trip (:mod:`fm_lab.store.pg_start`); anything else (a
        run's first start of a version, suspensions, answers,
        steps, many spans) in a pipeline: the reads in one round trip, the writes and the
        commit in another (COPY, from :data:`COPY_SPANS_FROM` spans, is not pipelined)."""
        if not records:
            return
        if pg_commit.fits(records):
            with self.connection() as con:
                if pg_commit.commit(con.raw, run_id, records, lease):
                    return
        elif lease is not None and pg_start.fits(records):
            start = cast("StartRecord", records[0])
            version = self._versions.get((start["workflow_id"], start["hash"]))
            if version is not None:
                with self.connection() as con:
                    if pg_start.commit(con.raw, run_id, start, version, lease, _AUDIT_LOCK):
                        return
        spanned = sum(1 for r in records if r["k"] == "span" or r.get("span"))
        with (self.connection() as con,
              pipelined_transaction(con.raw) if spanned < COPY_SPANS_FROM
              else con.raw.transaction()):
            con.versions.clear()  # only this transaction's (a held con outlives rollbacks)
            self._ingest(con, run_id, records, lease)
        self._versions.update(con.versions)  # committed: stored for good

    def ingest_taking(self, run_id: str, records: Sequence[JournalRecord]) -> bool:
        """A new run's first commit, when ``records`` are a lone start of a workflow version
        this store knows: take the run for this process and store the start in one round
        trip on the lock session, which takes the run in the start's transaction
        (:mod:`fm_lab.store.pg_start`); True when done. ``RunLockedError``, with nothing
        stored, when another process (or another journal here) holds the run. False, with
        nothing done, for anything else: take the run, then :meth:`ingest`."""
        if not pg_start.fits(records):
            return False
        start = cast("StartRecord", records[0])
        version = self._versions.get((start["workflow_id"], start["hash"]))
        if version is None:
            return False
        self.locks.take_with(run_id, lambda session: pg_start.commit(
            session, run_id, start, version, None, _AUDIT_LOCK))
        return True

    def ingest_held(self, run_id: str, records: Sequence[JournalRecord],
                    known_rows: Mapping[int, NodeRows] | None = None) -> bool:
        """Store ``records`` of a run this process holds on its lock session, when they fit
        one statement and the session is free (:meth:`RunLocks.write_held`); True when done.
        False, with nothing done: :meth:`ingest` them. ``known_rows``: their node rows, made
        before, by seq."""
        return pg_commit.fits(records) and self.locks.write_held(
            run_id, lambda session: pg_commit.commit(session, run_id, records, None,
                                                     known_rows=known_rows))

    def ingest_giving_up(self, run_id: str, records: Sequence[JournalRecord],
                         known_rows: Mapping[int, NodeRows] | None = None) -> bool:
        """A run's last commit (its end): when ``records`` fit one statement and this process
        holds the run, store them on the lock session and give the run up after the commit,
        in one round trip (:func:`fm_lab.store.pg_commit.commit`); True when done. False, with
        nothing done: :meth:`ingest` them, and release the run after."""
        return pg_commit.fits(records) and self.locks.give_up_with(
            run_id, lambda session: pg_commit.commit(session, run_id, records, None,
                                                     give_up=True, known_rows=known_rows))

    def _ingest(self, con: PgConnection, run_id: str, records: Sequence[JournalRecord],
                lease: int | None) -> None:
        """:meth:`ingest`'s general path, inside its transaction."""
        raw = con.raw
        # every read first (one round trip in a pipeline): the run row (locked), the lease, the
        # workflow's stored versions (a start) and the audit chain's head (an entry to log)
        run = raw.execute(_RUN_ROW, [run_id])
        held = None if lease is None else raw.execute(f"select {HELD}", [lease, run_id])
        start = next((r for r in records if r["k"] == "start"), None)
        versions = None if start is None else self._spec_versions(con, start)
        head = self._audit_head(con) if any(logs_entry(r) for r in records) else None
        row = run.fetchone()
        if held is not None and not ((found := held.fetchone()) and found[0]):
            raise LeaseMissingError(run_id)
        if start is not None and row is not None and pg_start.started_elsewhere(row[2], start):
            raise pg_start.id_in_use(run_id)  # the transaction stores nothing
        stored_seq = int(row[0]) if row else 0
        fresh = unstored(records, stored_seq)
        if not fresh:
            return
        nodes, spans, others = split_records(fresh)
        workflow_id = row[1] if row else None
        is_run = row is not None
        audit: list[AuditEntry] = []
        if start is not None and start["seq"] > stored_seq:  # the run's row first
            workflow_id, is_run = start["workflow_id"], True
            if (started := self._insert_run(con, run_id, start, versions=versions)) is not None:
                audit.append(started)
        audit += apply_records(
            self, con, run_id, nodes, [r for r in others if r["k"] != "start"],
            lambda: self._insert_spans(con, run_id if is_run else None, workflow_id, nodes,
                                       spans))
        self._append_audit(con, audit, head)
        if is_run:
            con.execute("update runs set journal_seq = ? where run_id = ?",
                        [fresh[-1]["seq"], run_id])

    @staticmethod
    def _insert_step(con: PgConnection, run_id: str, record: StepRecord) -> None:
        con.execute("insert into steps values (?, ?, ?, ?, ?, ?)",
                    [run_id, record["path"], record["name"], record["seq"],
                     json_text(record.get("result")), timestamp(record["created"])])

    @staticmethod
    def _answer(con: PgConnection, run_id: str, record: ResumeRecord) -> bool:
        """Mark the suspension the resume record answers; False when it was answered before
        (an earlier answer written again by a later segment of the run)."""
        return bool(con.raw.execute(  # its own cursor: fetched in a pipeline too
            "update suspensions set resumed_at = %s, resumed_seq = %s, resume_data = %s, "
            "resumed_by = %s where run_id = %s and path = %s and resumed_at is null "
            "returning path",
            [timestamp(record["at"]), record["seq"], json_text(record.get("data")),
             record.get("by"), run_id, record["path"]]).fetchall())

    @staticmethod
    def _spec_versions(con: PgConnection, record: StartRecord) -> psycopg.Cursor[Any]:
        """Take the workflow's transaction lock (concurrent first runs of one workflow
        serialise on it) and ask for the version stored with this content and the newest."""
        workflow_id = record["workflow_id"]
        con.raw.execute(_WORKFLOW_LOCK, [workflow_id])
        return con.raw.execute(_SPEC_VERSIONS, [workflow_id, record["hash"], workflow_id])

    def _save_spec(self, con: PgConnection, record: StartRecord,
                   versions: psycopg.Cursor[Any] | None = None) -> int:
        """Store a workflow spec if this exact content is new; return its version number
        (``versions``: asked for by :meth:`_spec_versions` already)."""
        found = (versions or self._spec_versions(con, record)).fetchone()
        stored, latest = found if found else (None, None)
        key = (record["workflow_id"], record["hash"])
        if stored is not None:
            con.versions[key] = int(stored)
            return int(stored)
        version: int = max(record["version"], int(latest or 0) + 1)
        con.versions[key] = version
        con.execute("insert into workflows (workflow_id, version, hash, name, spec, saved_by) "
                    "values (?, ?, ?, ?, ?, ?)",
                    [record["workflow_id"], version, record["hash"], record["spec"].get("name"),
                     dumps(record["spec"]), record.get("by")])
        return version

    def _insert_run(self, con: PgConnection, run_id: str, record: StartRecord,
                    end: RunEndRecord | None = None,
                    versions: psycopg.Cursor[Any] | None = None) -> AuditEntry | None:
        """Store the run's row (and its workflow version if new), as ``end`` left it if
        given; return its audit entry."""
        version = self._save_spec(con, record, versions)
        ended = {"status": "running"} if end is None else {**run_end(end),
                                                          "journal_seq": end["seq"]}
        row = {**run_start(run_id, record, version), **ended}
        con.execute(f"insert into runs ({', '.join(row)}) values ({', '.join('?' * len(row))})",
                    list(row.values()))
        return start_entry(run_id, record, version)

    @staticmethod
    def _insert_nodes(con: PgConnection, run_id: str, nodes: list[NodeRecord]) -> None:
        marks = ", ".join("?" * len(NODE_COLUMNS))
        con.executemany(f"insert into node_executions ({', '.join(NODE_COLUMNS)}) "
                        f"values ({marks})", node_rows(run_id, nodes))

    @staticmethod
    def _insert_spans(con: PgConnection, run_id: str | None, workflow_id: str | None,
                      nodes: list[NodeRecord], spans: list[SpanRecord]) -> None:
        """Spans of a run (``run_id``) or, with None, of a standalone trace (stored copies of
        the same spans are replaced: a re-ingest after a crash); a run's workflow span is
        rewritten on resume. Stored copies are looked up by the run (or the traces): an
        index, never every run's workflow spans."""
        if run_id is None and spans:
            con.execute("delete from spans where trace_id = any(?) and span_id = any(?)",
                        [sorted({r["trace"] for r in spans}), [r["span"] for r in spans]])
        elif replaced := [r["span"] for r in spans if r["kind"] == "workflow"]:
            con.execute("delete from spans where run_id = ? and kind = 'workflow' "
                        "and span_id = any(?)", [run_id, replaced])
        rows = span_rows(run_id, workflow_id, [*(n for n in nodes if n.get("span")), *spans])
        if not rows:
            return
        names = ", ".join(SPAN_COLUMNS)
        if len(rows) >= COPY_SPANS_FROM:
            statement = f"copy spans ({names}) from stdin"
            with con.raw.cursor().copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(SPAN_COLUMNS))
        con.executemany(f"insert into spans ({names}) values ({marks})", rows)

    @staticmethod
    def _insert_suspension(con: PgConnection, run_id: str, record: SuspendRecord) -> None:
        con.execute(
            "insert into suspensions (run_id, path, node_id, seq, label, payload, resume_schema,"
            " since, expires_at, on_timeout, default_data, assignees, roles, payload_schema)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, record["path"], record.get("node"), record["seq"], record.get("label"),
             dumps(record.get("payload")), dumps(record.get("schema")),
             timestamp(record["since"]), timestamp(record.get("expires")), record.get("on_timeout"),
             dumps(record.get("default")),
             dumps(record["assignees"]) if record.get("assignees") else None,
             dumps(record["roles"]) if record.get("roles") else None,
             dumps(record["payload_schema"]) if record.get("payload_schema") else None])

    @staticmethod
    def _end_run(con: PgConnection, run_id: str, record: RunEndRecord) -> None:
        values = run_end(record)
        con.execute(f"update runs set {', '.join(f'{c} = ?' for c in values)} where run_id = ?",
                    [*values.values(), run_id])

    def adopt_journal(self, run_id: str, journal: RunJournal, force: bool = False) -> list[str]:
        """Nothing to adopt: a run's committed records are already its rows."""
        return []

    def recover_journals(self, run_id: str | None = None) -> list[str]:
        """Nothing to recover: no record waits outside the server."""
        return []

    def recover_later(self) -> None:
        """Nothing to recover later."""

    def set_status(self, run_id: str, status: str, audit: Sequence[AuditEntry] = ()) -> None:
        """Set a stored (not live) run's status; log ``audit`` in the same transaction."""
        with self.connection() as con, con.raw.transaction():
            con.execute("update runs set status = ?, ended_at = now() where run_id = ?",
                        [status, run_id])
            self._append_audit(con, audit)

    def delete_run(self, run_id: str, audit: AuditEntry) -> list[str]:
        """Remove a stored run and its child runs with everything keyed by their ids (node
        results, spans, suspensions, steps, cancel requests) and log ``audit``, in one
        transaction."""
        with self.connection() as con, con.raw.transaction():
            ids = [str(r[0]) for r in con.execute(
                "select run_id from runs where run_id = ? or starts_with(run_id, ?) "
                "order by run_id for update", [run_id, run_id + "."]).fetchall()]
            if run_id not in ids:
                raise RunNotFoundError(f"no run {run_id!r} in {self.path}")
            for table in ("node_executions", "spans", "suspensions", "steps",
                          "cancel_requests", "runs"):
                con.execute(f"delete from {table} where run_id = any(?)", [ids])
            self._append_audit(con, [audit])
        return ids

    # ---- liveness and cancel -------------------------------------------------------------
    def run_is_live(self, run_id: str) -> bool:
        """True while a process anywhere holds the run's lock."""
        return self.locks.live(run_id)

    def request_cancel(self, run_id: str) -> None:
        """Ask the process running ``run_id`` to cancel it at its next tick."""
        with self.connection() as con:
            con.execute("insert into cancel_requests (run_id) values (?) "
                        "on conflict (run_id) do nothing", [run_id])

    def take_cancel_request(self, run_id: str) -> bool:
        """True (once) if a cancel of ``run_id`` was requested; consumes the request."""
        with self.connection() as con:
            return con.execute("delete from cancel_requests where run_id = ? returning 1",
                               [run_id]).fetchone() is not None

    # ---- reading -------------------------------------------------------------------------
    def load_run(self, run_id: str) -> RunSnapshot:
        """The stored run: workflow, state, each path's latest committed result, journaled
        steps, and resume data not yet consumed by a finished node."""
        from fm_lab.spec.models import Workflow

        with self.connection() as con:
            run = fetch_dict(con.execute(
                "select r.status, r.inputs, r.outputs, r.error, r.state, r.journal_seq, w.spec, "
                "r.parent_run_id, r.trace_id, r.policy, r.forked_from, r.forked_at_node "
                "from runs r join workflows w "
                "on w.workflow_id = r.workflow_id and w.version = r.workflow_version "
                "where r.run_id = ?", [run_id]))
            if run is None:
                raise RunNotFoundError(f"no run {run_id!r} in {self.path}")
            node_rows = fetch_dicts(con.execute(
                f"select * from (select distinct on (node_id) {_STORED_NODE} "
                "from node_executions where run_id = ? order by node_id, seq desc) latest "
                "order by seq", [run_id]))
            step_rows = con.execute("select name, result from steps where run_id = ?",
                                    [run_id]).fetchall()
            resume_rows = con.execute(
                "select path, resume_data from suspensions where run_id = ? "
                "and resumed_seq is not null", [run_id]).fetchall()
        nodes = {r["node_id"]: stored_node(r) for r in node_rows}
        resumes = {path: codec.loads(data) for path, data in resume_rows
                   if (node := nodes.get(path.split("#", 1)[0])) is None
                   or node["status"] != "succeeded"}
        return RunSnapshot(
            run_id=run_id, workflow=Workflow.from_json(run["spec"]), status=run["status"],
            inputs=codec.loads(run["inputs"]) or {}, outputs=codec.loads(run["outputs"]),
            error=codec.loads(run["error"]), state=codec.loads(run["state"]),
            journal_seq=int(run["journal_seq"]), nodes=nodes,
            steps={name: codec.loads(result) for name, result in step_rows},
            resumes=resumes, parent_run_id=run["parent_run_id"], trace_id=run["trace_id"],
            policy=run["policy"], forked_from=run["forked_from"],
            forked_at_node=run["forked_at_node"])

    def run_status(self, run_id: str) -> str:
        """The stored status of a run (raises ``RunNotFoundError``)."""
        with self.connection() as con:
            row = con.execute("select status from runs where run_id = ?", [run_id]).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r} in {self.path}")
        return str(row[0])

    def child_runs(self, run_id: str, statuses: tuple[str, ...] = ()) -> list[str]:
        """Ids of ``run_id``'s child runs, optionally only in ``statuses``."""
        where = f" and status in ({', '.join('?' * len(statuses))})" if statuses else ""
        with self.connection() as con:
            rows = con.execute(f"select run_id from runs where starts_with(run_id, ?){where} "
                               "order by created_at", [run_id + ".", *statuses]).fetchall()
        return [str(r[0]) for r in rows]

    def orphaned_runs(self) -> list[str]:
        """Top-level runs stored as running (dead owners, or live elsewhere), oldest first."""
        with self.connection() as con:
            rows = con.execute("select run_id from runs where status = 'running' and "
                               "parent_run_id is null order by created_at").fetchall()
        return [str(r[0]) for r in rows]

    def pending_rows(self, run_id: str | None = None,
                     with_children: bool = False) -> list[PendingRow]:
        """Suspensions waiting for data (the latest per path), oldest first."""
        where, params = "", []
        if run_id is not None:
            where = "and (s.run_id = ?" + (" or starts_with(s.run_id, ?)"
                                           if with_children else "") + ")"
            params = [run_id, run_id + "."] if with_children else [run_id]
        with self.connection() as con:
            rows = fetch_dicts(con.execute(
                "select * from (select distinct on (s.run_id, s.path) s.run_id, r.workflow_id, "
                "s.node_id, s.label, s.path as path_id, s.payload, s.since, s.expires_at, "
                "s.on_timeout, s.resume_schema, s.default_data, s.assignees, s.roles, "
                "s.payload_schema, "
                "s.resumed_at "
                "from suspensions s join runs r on r.run_id = s.run_id "
                f"where r.status = 'suspended' {where} "
                "order by s.run_id, s.path, s.seq desc) latest "
                "where resumed_at is null order by since", params))
        for row in rows:
            del row["resumed_at"]
        return rows  # type: ignore[return-value]

    def pending(self, run_id: str | None = None, with_children: bool = False) -> pd.DataFrame:
        """:meth:`pending_rows` as a DataFrame."""
        return pending_frame(self.pending_rows(run_id, with_children))

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
        with self.connection() as con, con.raw.transaction():
            return self._save_spec(con, spec_record(workflow, saved_by))

    def cache_entries(self, workflow_id: str) -> dict[str, tuple[str, str | None, str, str]]:
        """The newest successful result per cache key among the runs of ``workflow_id``."""
        with self.connection() as con:
            rows = con.execute(
                "select distinct on (n.cache_key) n.cache_key, n.output, n.state_patch, "
                "n.run_id, n.node_id from node_executions n join runs r on r.run_id = n.run_id "
                "where r.workflow_id = ? and n.cache_key is not null and n.status = 'succeeded' "
                "order by n.cache_key, n.ended_at desc", [workflow_id]).fetchall()
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def runs(self, limit: int | None = 100, status: str | None = None) -> pd.DataFrame:
        """Recent runs, newest first."""
        where, params = ("where status = ?", [status]) if status else ("", [])
        limit_sql = f"limit {int(limit)}" if limit else ""
        columns = ", ".join(RUN_COLUMNS).replace(
            "duration_ms", "extract(epoch from (ended_at - created_at))::float8 * 1000 "
            "as duration_ms")
        return self.sql(f"select {columns} from all_runs {where} "
                        f"order by created_at desc {limit_sql}", params)

    def workflows(self, workflow_id: str | None = None) -> pd.DataFrame:
        """Stored workflow versions, newest first: who saved each and its content hash."""
        where, params = ("where workflow_id = ?", [workflow_id]) if workflow_id else ("", [])
        return self.sql(f"select {', '.join(WORKFLOW_COLUMNS)} from workflows {where} "
                        "order by created_at desc, workflow_id, version desc", params)

    def node_executions(self, run_id: str, history: bool = False) -> pd.DataFrame:
        """One row per node of a run (its latest execution; every one with history=True)."""
        columns = ("node_id, node_type, status, attempts, started_at, ended_at, duration_ms, "
                   "input, output, error, cached_from, seq")
        if history:
            query = (f"select {columns} from node_executions where run_id = ? order by seq")
        else:
            query = (f"select * from (select distinct on (node_id) {columns} from "
                     "node_executions where run_id = ? order by node_id, seq desc) latest "
                     "order by seq")
        return self.sql(query, [run_id])

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL on the server (``?`` placeholders with ``params``) as a DataFrame. The
        audit log refuses changes (a trigger; statements naming it are refused here too)."""
        refuse_audit_changes(query)
        with self.connection() as con:
            return con.execute(query, params).df()
