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
backend pid, which a commit probes in one lock-table lookup), or runs on that session itself
(which fails with the session), and the running engine asks
:meth:`RunLocks.regain` at each tick. A lost lock is taken again on a new session when nobody
else took it meanwhile; otherwise the run is lost to this process
(:mod:`fm_lab.store.pg_journal`).

A run's commits ride on the lock session when they can: a new run's start takes the run in
its own transaction (:data:`TAKING`, :meth:`RunLocks.take_with`), its end gives it up after
its commit in the same round trip (:data:`GIVE_UP_ENDED`, :meth:`RunLocks.give_up_with`), and
a commit in between goes there while no other thread uses the session
(:meth:`RunLocks.write_held`): the session holds the lease, so there is nothing to check.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
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
TAKING = (f"case when pg_try_advisory_lock({_KEY}) "
          f"then pg_try_advisory_lock({_OWN_LEASE}) else false end")  # %s: the run, twice
_TAKE = f"select {TAKING}"
_GIVING_UP = f"pg_advisory_unlock({_OWN_LEASE}), pg_advisory_unlock({_KEY})"
_GIVE_UP = f"select {_GIVING_UP}"
# give a run up once its end is stored: %s the run twice, then the run and its end's seq
GIVE_UP_ENDED = f"select {_GIVING_UP} from runs where run_id = %s and journal_seq >= %s"
# a dead peer's session ends within about this many seconds (TCP keepalives)
KEEPALIVE: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
             "keepalives_count": 3}


_instances: weakref.WeakSet[RunLocks] = weakref.WeakSet()


def _forget_after_fork() -> None:
    """A forked child gets fresh thread locks: a parent's thread may have held one (its
    session, which the child never uses, during a commit) at the fork."""
    for locks in list(_instances):
        locks._lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


class RunLocks:
    """This process's advisory locks on runs of one PostgreSQL store (see the module)."""

    def __init__(self, conninfo: str, describe: str,
                 options: dict[str, Any] | None = None) -> None:
        self._conninfo = conninfo
        self._describe = describe  # the store's URL without its password, for messages
        # the session's settings: the store's connections', as a run's commits go here too
        self._options = {**(options or {}), "autocommit": True,
                         "application_name": "fm_lab run locks", **KEEPALIVE}
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = 0
        self._backend_pid = 0  # the session's, read without the lock (it is held by commits)
        self._held: set[str] = set()
        _instances.add(self)

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed or self._pid != os.getpid():
            # a forked child holds none of its parent's locks, a new session none of the
            # ended one's
            self._held.clear()
            self._conn = psycopg.connect(self._conninfo, **self._options)
            self._pid = os.getpid()
            self._backend_pid = int(self._conn.info.backend_pid)
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
            raise self._locked(run_id)

    def _locked(self, run_id: str) -> RunLockedError:
        return RunLockedError(f"run {run_id} in {self._describe} is locked by another live "
                              "process: that process is still running this run")

    def session_pid(self) -> int:
        """The backend pid of the lock session (0 before it exists; the dead one's after the
        server ended it, until :meth:`regain` notices). Without waiting for the session: a
        commit on a pooled connection while another thread's commit uses the session (see
        :meth:`write_held`) must not wait for it."""
        conn = self._conn
        if conn is None or conn.closed or self._pid != os.getpid():
            return 0
        return self._backend_pid

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

    def holds(self, run_id: str) -> bool:
        """True while this process holds ``run_id`` (as far as it knows: a session the
        server ended is noticed at its next statement); without waiting for the session."""
        return run_id in self._held and self._pid == os.getpid()

    def take_with(self, run_id: str, write: Callable[[psycopg.Connection[Any]], bool]) -> None:
        """Take ``run_id`` and write its first records in one round trip: ``write(session)``
        runs on the lock session, takes the run's lock with :data:`TAKING` in its own
        transaction and returns whether it did (the records are then stored). Raises
        :class:`RunLockedError`, with nothing stored, when another process (or this one,
        elsewhere) holds the run. A session lock outlives the rollback of the transaction
        that took it: when ``write`` fails or is interrupted, the lock is given up again (if
        that fails too, the session is ended, which frees it)."""
        with self._lock:
            if run_id in self._held:
                raise self._locked(run_id)
            conn = self._connection()
            try:
                took = write(conn)
            except BaseException:  # a refused write, a lost session, an interrupt (Ctrl-C)
                if not conn.closed:  # a lost session held nothing any more
                    try:
                        conn.execute(_GIVE_UP, [run_id, run_id])
                    except BaseException:  # the lock may be held: end the session with it
                        conn.close()  # (this process's other runs take theirs again)
                        raise
                raise
            if not took:
                raise self._locked(run_id)
            self._held.add(run_id)

    def give_up_with(self, run_id: str,
                     write: Callable[[psycopg.Connection[Any]], bool]) -> bool:
        """Write ``run_id``'s last records and give the run up in one round trip:
        ``write(session)`` runs on the lock session, which holds the run (no lease to check),
        and gives the run up with :data:`GIVE_UP_ENDED` after its commit; True when it did.
        False, with nothing done, when this process does not hold the run on a live
        session, or when ``write`` stored nothing (the run stays held)."""
        with self._lock:
            conn = self._holding(run_id)
            if conn is None or not write(conn):
                return False
            self._held.discard(run_id)
            return True

    def write_held(self, run_id: str, write: Callable[[psycopg.Connection[Any]], bool]) -> bool:
        """``write(session)`` on the lock session, when it holds ``run_id`` and is free right
        now: a commit there needs no lease check (the session holds the lease) and no pooled
        connection, and one server process does all of a run's work while it runs alone.
        False, with nothing done, when another thread is using the session (its caller then
        takes a pooled connection), when the session does not hold the run, or when
        ``write`` stored nothing."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            conn = self._holding(run_id)
            return conn is not None and write(conn)
        finally:
            self._lock.release()

    def _holding(self, run_id: str) -> psycopg.Connection[Any] | None:
        """The lock session, when it is this process's, alive, and holds ``run_id``."""
        conn = self._conn
        if (run_id not in self._held or conn is None or conn.closed
                or self._pid != os.getpid()):
            return None
        return conn

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
