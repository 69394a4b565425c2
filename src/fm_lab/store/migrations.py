"""Schema migrations, as both SQL stores apply them: which numbered migrations a database has
(table ``meta``), the refusal of a database written by a newer fm_lab, the loop that applies
the missing ones, and :class:`MigrationReport`, what ``store.migrate()`` answers.

Each store keeps its own list (:mod:`fm_lab.store.schema` for DuckDB,
:mod:`fm_lab.store.pg_schema` for PostgreSQL, numbered alike) and its own transactions: DuckDB
commits each migration on its own, PostgreSQL applies them all in one transaction under a lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fm_lab.store.errors import StoreVersionError

Migrations = Sequence[tuple[int, str]]
META_TABLE = "create table if not exists meta (key varchar primary key, value varchar)"
_RECORD = ("insert into meta values ('schema_version', ?), ('schema_versions', ?) "
           "on conflict (key) do update set value = excluded.value")


class Executes(Protocol):
    """A DuckDB connection or a :class:`~fm_lab.store.pg_sql.PgConnection`."""

    def execute(self, query: str, params: Sequence[Any] | None = ..., /) -> Any: ...


@dataclass(frozen=True)
class MigrationReport:
    """A store's schema: the version ``before`` (when the store was opened) and ``after``,
    the migrations ``applied`` (by this store since it was opened) and those still
    ``pending`` (a store opened read-only, or ``migrate(apply=False)``)."""

    store: str  # the file or the URL (password masked)
    before: int
    after: int
    applied: tuple[int, ...]
    pending: tuple[int, ...]
    latest: int  # the newest migration this fm_lab knows

    @property
    def up_to_date(self) -> bool:
        """No migration is pending."""
        return not self.pending

    def describe(self) -> str:
        """One line for people: versions, and what was applied or is pending."""
        done = (f"applied migration{'s' * (len(self.applied) > 1)} "
                f"{', '.join(map(str, self.applied))}" if self.applied else "nothing applied")
        if self.pending:
            return (f"{self.store}: schema v{self.before}, migration"
                    f"{'s' * (len(self.pending) > 1)} {', '.join(map(str, self.pending))} "
                    f"pending (fm-lab store migrate applies them)")
        return f"{self.store}: schema v{self.before} -> v{self.after}, {done}; up to date"


@runtime_checkable
class MigratingStore(Protocol):
    """A store with tables to migrate (the DuckDB and PostgreSQL stores)."""

    path: str
    read_only: bool

    def migrate(self, apply: bool = True) -> MigrationReport:
        """Apply pending migrations (``apply=False``: only report them)."""
        ...


def read_state(con: Executes, migrations: Migrations) -> tuple[int, set[int]]:
    """``(schema version, numbers of the migrations applied)`` as ``meta`` records them
    (a database from before the numbers were recorded has every one up to its version)."""
    row = con.execute("select value from meta where key = 'schema_version'").fetchone()
    version = int(row[0]) if row else 0
    rows = con.execute("select value from meta where key = 'schema_versions'").fetchall()
    if rows and rows[0][0]:  # fetchall: no unfinished result left on the connection
        return version, {int(n) for n in str(rows[0][0]).split(",")}
    return version, {number for number, _ in migrations if number <= version}


def refuse_newer(path: str, version: int, latest: int) -> None:
    """Raise :class:`StoreVersionError` for a database a newer fm_lab wrote."""
    if version > latest:
        raise StoreVersionError(
            f"{path} was written by a newer fm_lab (schema v{version}); this fm_lab reads up "
            f"to v{latest}. Upgrade fm_lab to open it.")


def pending(migrations: Migrations, applied: set[int]) -> tuple[int, ...]:
    """The numbers of the migrations not applied yet, in order."""
    return tuple(number for number, _ in migrations if number not in applied)


def apply_missing(con: Executes, migrations: Migrations, applied: set[int],
                  step: Callable[[], AbstractContextManager[Any]]) -> list[int]:
    """Apply each migration not in ``applied`` (in order, a gap filled in later), recording
    it in ``meta`` inside ``step()`` (a transaction, or nothing inside the caller's); return
    the numbers applied. ``applied`` is updated."""
    done: list[int] = []
    for number, sql in migrations:
        if number in applied:
            continue
        with step():
            con.execute(sql)
            applied.add(number)
            con.execute(_RECORD, [str(max(applied)), ",".join(map(str, sorted(applied)))])
        done.append(number)
    return done


def report(path: str, before: int, applied: set[int], applied_now: Sequence[int],
           migrations: Migrations) -> MigrationReport:
    """The :class:`MigrationReport` of a store at ``path``."""
    return MigrationReport(store=path, before=before, after=max(applied, default=0),
                           applied=tuple(applied_now), pending=pending(migrations, applied),
                           latest=max(number for number, _ in migrations))
