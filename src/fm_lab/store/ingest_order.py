"""The order in which a SQL store applies one ingest's journal records, shared by the DuckDB
and PostgreSQL stores (each writes the rows in its own SQL): the run's row first (a start
record), then node results and spans, then what refers to the run (its end, suspensions,
answers, journaled steps). Returns the audit entries those records are, for the store to log
in the same transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from fm_lab.store.audit import resume_entry

if TYPE_CHECKING:
    from fm_lab.store.audit import AuditEntry
    from fm_lab.store.records import (
        JournalRecord,
        NodeRecord,
        OtherRecord,
        ResumeRecord,
        RunEndRecord,
        StartRecord,
        StepRecord,
        SuspendRecord,
    )


class RecordTables(Protocol):
    """How a store writes each kind of record into its tables (on connection ``con``)."""

    def _insert_run(self, con: Any, run_id: str, record: StartRecord,
                    end: RunEndRecord | None = None) -> AuditEntry | None: ...

    def _insert_nodes(self, con: Any, run_id: str, nodes: list[NodeRecord]) -> None: ...

    def _end_run(self, con: Any, run_id: str, record: RunEndRecord) -> None: ...

    def _insert_suspension(self, con: Any, run_id: str, record: SuspendRecord) -> None: ...

    def _answer(self, con: Any, run_id: str, record: ResumeRecord) -> bool: ...

    def _insert_step(self, con: Any, run_id: str, record: StepRecord) -> None: ...


def unstored(records: Sequence[JournalRecord], stored_seq: int) -> Sequence[JournalRecord]:
    """The records after ``stored_seq`` (the run's ``journal_seq``): an ingest stores each
    record once. Records come in journal order, so all are new when the first is."""
    if not records or records[0]["seq"] > stored_seq:
        return records
    return [r for r in records if r["seq"] > stored_seq]


def apply_records(tables: RecordTables, con: Any, run_id: str, nodes: list[NodeRecord],
                  others: Sequence[OtherRecord],
                  insert_spans: Callable[[], None]) -> list[AuditEntry]:
    """Write ``nodes`` and ``others`` (spans through ``insert_spans``, after the run's row and
    its nodes) in the order above; return the audit entries of the start and the answers that
    took effect (an answer written again by a later segment of the run is no new action).
    A run started and ended in one ingest (a short run) has its row inserted as it ended:
    one statement, not an insert and an update."""
    audit: list[AuditEntry] = []
    ends = [r for r in others if r["k"] == "run"]
    merged = ends[0] if len(ends) == 1 and others[-1] is ends[0] and any(
        r["k"] == "start" for r in others) else None
    for record in others:
        if record["k"] == "start" and (
                entry := tables._insert_run(con, run_id, record, merged)):
            audit.append(entry)
    if nodes:
        tables._insert_nodes(con, run_id, nodes)
    insert_spans()
    for record in others:
        if record["k"] == "run" and record is not merged:
            tables._end_run(con, run_id, record)
        elif record["k"] == "suspend":
            tables._insert_suspension(con, run_id, record)
        elif record["k"] == "resume":
            if tables._answer(con, run_id, record) and (entry := resume_entry(run_id, record)):
                audit.append(entry)
        elif record["k"] == "step":
            tables._insert_step(con, run_id, record)
    return audit
