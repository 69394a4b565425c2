"""Which process runs a run, on a PostgreSQL store: session advisory locks.

The process that runs (or resumes, or cancels) a run holds an advisory lock keyed by the run's
id on one connection of its own. The server drops the lock the moment that connection ends, so
when a process is killed (or its machine goes away: TCP keepalives end the session) any other
process on any machine sees the run as no longer live and may recover it. It is a lease the
server keeps, with no heartbeat to tune and no file lock to share: the DuckDB store's ``flock``
on a journal file, for many machines.
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
            if self._pid != os.getpid():
                self._held.clear()  # a forked child holds none of its parent's locks
            self._conn = psycopg.connect(self._conninfo, autocommit=True,
                                         application_name="fm_lab run locks", **KEEPALIVE)
            self._pid = os.getpid()
        return self._conn

    def acquire(self, run_id: str) -> None:
        """Lock ``run_id`` for this process, or raise :class:`RunLockedError` when another
        process (or this one, elsewhere) runs it."""
        with self._lock:
            if run_id not in self._held:
                row = self._connection().execute(
                    f"select pg_try_advisory_lock({_KEY})", [run_id]).fetchone()
                if row is not None and row[0]:
                    self._held.add(run_id)
                    return
            raise RunLockedError(f"run {run_id} in {self._describe} is locked by another live "
                                 "process: that process is still running this run")

    def release(self, run_id: str) -> None:
        """Unlock ``run_id`` (a no-op when this process does not hold it)."""
        with self._lock:
            if run_id in self._held:
                self._held.discard(run_id)
                if self._conn is not None and not self._conn.closed:
                    self._conn.execute(f"select pg_advisory_unlock({_KEY})", [run_id])

    def live(self, run_id: str) -> bool:
        """True while some process (this one included) holds ``run_id``'s lock."""
        with self._lock:
            if run_id in self._held:
                return True
            conn = self._connection()
            row = conn.execute(f"select pg_try_advisory_lock({_KEY})", [run_id]).fetchone()
            if row is not None and row[0]:
                conn.execute(f"select pg_advisory_unlock({_KEY})", [run_id])
                return False
            return True

    def close(self) -> None:
        """End the session: every lock it held is released by the server."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self._held.clear()
