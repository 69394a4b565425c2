"""Which process runs a run, on a PostgreSQL store: session advisory locks.

The process that runs (or resumes, or cancels) a run holds an advisory lock keyed by the run's
id on one connection of its own. The server drops the lock the moment that connection ends, so
when a process is killed (or its machine goes away: TCP keepalives end the session) any other
process on any machine sees the run as no longer live and may recover it. It is a lease the
server keeps, with no heartbeat to tune and no file lock to share: the DuckDB store's ``flock``
on a journal file, for many machines.

The lease can end while the process lives (the server restarts, an administrator terminates
the session): every commit checks, in its own transaction, that this process's lock session
still holds the run (:data:`HELD`: the session also holds a lease key, the run's id with its
backend pid, which a commit probes in one lock-table lookup), and the running engine asks
:meth:`RunLocks.regain` at each tick. A lost lock is taken again on a new session when nobody
else took it meanwhile; otherwise the run is lost to this process
(:mod:`fm_lab.store.pg_journal`).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from fm_lab.store.journal import RunLockedError

if TYPE_CHECKING:
    import psycopg

# the lock key: a 64-bit hash of the run id, in fm_lab's own namespace of keys
_KEY = "hashtextextended('fm_lab.run:' || %s, 0)"
# the lease key: the run's id with the backend pid of the lock session holding the run; only
# that session takes it (with the run's lock, for as long), so it is held exactly while that
# session holds the run
_LEASE = "hashtextextended('fm_lab.lease:' || {pid}::text || ':' || %s, 0)"
_OWN_LEASE = _LEASE.format(pid="pg_backend_pid()")
# SQL true while the session with backend pid %s holds the lease of run %s: a shared try-lock
# on the lease key fails exactly while that session holds it (exclusively). One lock-table
# probe, where the pg_locks view gathered every lock of the server (~0.06-0.2 ms more per
# commit, benchmarks/postgres.py); a shared lock it takes (the lease is gone) ends with the
# transaction.
HELD = "not pg_try_advisory_xact_lock_shared(" + _LEASE.format(pid="%s") + ")"
# take a run (its lock, then, only when that was taken, the lease of this session: no other
# live session has this pid, so nobody else holds it), and give it up (the lease first)
_TAKE = (f"select case when pg_try_advisory_lock({_KEY}) "
         f"then pg_try_advisory_lock({_OWN_LEASE}) else false end")
_GIVE_UP = f"select pg_advisory_unlock({_OWN_LEASE}), pg_advisory_unlock({_KEY})"
# a dead peer's session ends within about this many seconds (TCP keepalives)
KEEPALIVE: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
             "keepalives_count": 3}


class RunLocks:
    """This process's advisory locks on runs of one PostgreSQL store (see the module)."""

    def __init__(self, conninfo: str, describe: str) -> None:
        self._conninfo = conninfo
        self._describe = describe  # the store's URL without its password, for messages
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = 0
        self._held: set[str] = set()

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed or self._pid != os.getpid():
            # a forked child holds none of its parent's locks, a new session none of the
            # ended one's
            self._held.clear()
            self._conn = psycopg.connect(self._conninfo, autocommit=True,
                                         application_name="fm_lab run locks", **KEEPALIVE)
            self._pid = os.getpid()
        return self._conn

    def _try_lock(self, run_id: str) -> bool:
        """``pg_try_advisory_lock`` on the lock session, on a new session when the last one
        turns out to have ended (a server restart: it held nothing any more)."""
        import psycopg

        try:
            row = self._connection().execute(_TAKE, [run_id, run_id]).fetchone()
        except psycopg.OperationalError:
            if self._conn is not None and not self._conn.closed:
                raise  # not a lost session
            row = self._connection().execute(_TAKE, [run_id, run_id]).fetchone()
        return bool(row is not None and row[0])

    def acquire(self, run_id: str) -> None:
        """Lock ``run_id`` for this process, or raise :class:`RunLockedError` when another
        process (or this one, elsewhere) runs it."""
        with self._lock:
            if run_id not in self._held and self._try_lock(run_id):
                self._held.add(run_id)
                return
            raise RunLockedError(f"run {run_id} in {self._describe} is locked by another live "
                                 "process: that process is still running this run")

    def session_pid(self) -> int:
        """The backend pid of the lock session (0 before it exists; the dead one's after the
        server ended it, until :meth:`regain` notices)."""
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed or self._pid != os.getpid():
                return 0
            return int(conn.info.backend_pid)

    def regain(self, run_id: str) -> str:
        """Make sure this process holds ``run_id`` (which it took before): ``"held"`` when its
        lock session is alive and holds it; ``"taken"`` when the session had ended (every
        lock of it with it) and the lock was free to take again on a new one (the caller
        checks that nobody ran the run meanwhile); ``"busy"`` when another process holds it
        now. Raises ``psycopg.OperationalError`` while the server cannot be reached."""
        import psycopg

        with self._lock:
            conn = self._conn
            if conn is not None and not conn.closed and self._pid == os.getpid():
                try:
                    conn.execute("select 1")
                except psycopg.Error:
                    conn.close()  # the session ended, and its locks with it
            if run_id in self._held and self._conn is not None and not self._conn.closed:
                return "held"
            if self._try_lock(run_id):
                self._held.add(run_id)
                return "taken"
            return "busy"

    def release(self, run_id: str) -> None:
        """Unlock ``run_id`` (a no-op when this process does not hold it)."""
        with self._lock:
            if run_id in self._held:
                import psycopg

                self._held.discard(run_id)
                if self._conn is not None and not self._conn.closed:
                    try:
                        self._conn.execute(_GIVE_UP, [run_id, run_id])
                    except psycopg.OperationalError:  # the session ended: nothing is held
                        self._conn.close()

    def live(self, run_id: str) -> bool:
        """True while some process (this one included) holds ``run_id``'s lock."""
        with self._lock:
            if run_id in self._held:
                return True
            if self._try_lock(run_id):
                self._connection().execute(_GIVE_UP, [run_id, run_id])
                return False
            return True

    def close(self) -> None:
        """End the session: every lock it held is released by the server."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self._held.clear()
