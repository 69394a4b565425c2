"""The PostgreSQL store's connection pool: psycopg's, handing out the connection returned last.

psycopg_pool keeps idle connections first in, first out, so a thread's consecutive statements
(a chain's commits) go to every pooled connection in turn, each to a server process that has
been asleep since its last turn. Handing out the most recently returned one instead keeps one
warm server process on the job: measured on a 2-core machine, a 20-node chain's commits took
about 5% less time. An idle connection is still closed after ``max_idle`` (psycopg's default);
it is then the one used last rather than the one used least recently, which only changes which
connection goes.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg_pool


class MostRecentFirst(deque[Any]):
    """A deque whose ``popleft`` takes from the right: last returned, first handed out."""

    def popleft(self) -> Any:
        """The connection returned last."""
        return self.pop()


def open_pool(url: str, **options: Any) -> psycopg_pool.ConnectionPool[Any]:
    """A ``psycopg_pool.ConnectionPool`` on ``url`` (``options`` as its), opened, handing out
    the connection returned last when its idle connections are the deque psycopg keeps them in
    (any other pool works as psycopg made it)."""
    import psycopg_pool

    pool = psycopg_pool.ConnectionPool(url, open=False, **options)
    if type(getattr(pool, "_pool", None)) is deque:
        pool._pool = MostRecentFirst(pool._pool)
    pool.open()
    return pool
