"""Copy one store's history into another: ``fm-lab store copy SRC DST``, the way a personal
DuckDB file joins the team's PostgreSQL store (or a team store becomes an offline file).

Every table is copied: workflow versions, runs with their node results, suspensions, steps and
spans, standalone traces, agent memory, batches and the audit log. Running it again copies
nothing: rows whose keys the target has are left alone. What happens on a clash:

- **Workflow versions** are matched by content (``workflow_id`` and ``hash``). Content the
  target lacks is stored as a run there would store it: under its own version number when that
  is above the target's newest, else as the next number (noted in the report); copied runs
  point at the version their content got.
- **Runs** travel with their child runs, decided by the top-level run. A run the target already
  has with the same content (workflow, status, journal position, start time) is skipped; one it
  has with other content (the same id, continued on one side since an earlier copy) is
  refused, with the reason, and the target's copy kept. A run stored as ``running`` is refused
  unless ``include_running``: its process (live, or dead and not yet recovered) may still add
  to it, and ``recover()`` on the target would run it a second time.
- **Memory**: threads, summaries and working memory by key (a working memory whose content
  differs is reported, the target's kept); a thread's messages by id, appended only after the
  target's last message of that thread (messages that would interleave with the target's are
  refused).
- **The audit log** is not merged row for row: the source's entries (its own chain, verified
  first: a broken one is not imported) are appended to the target's chain as new entries with
  their original time, actor, action, run, path and before/after, then a ``store.copy`` entry
  by the current user names the source (password masked), the counts and the source's chain:
  the hash of its first row, and the seq range and head hash imported. The target's chain
  stays whole; a later copy of the same source imports only what came after that head.

Rows are read and written in Arrow batches (COPY into PostgreSQL); the data goes in two target
transactions (workflow versions, then the rest), the audit entries in a third.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from fm_lab.store import copy_io
from fm_lab.store.audit import STORE_COPY, AuditEntry, AuditRow, entry, verify
from fm_lab.store.base import RunStore, sql_store
from fm_lab.store.errors import StoreError

if TYPE_CHECKING:
    import pyarrow as pa

Progress = Callable[[str, int, int], None]
"""``progress(table, rows_done, rows_total)``, called as a table's rows are read."""

RUN_TABLES: Final = (("node_executions", "all_node_executions"), ("suspensions", "suspensions"),
                     ("steps", "steps"), ("spans", "all_spans"))
"""Tables of a run's rows (by ``run_id``), with the relation read from the source (DuckDB's
``all_*`` views add batch workers' Parquet shards)."""


@dataclass(frozen=True)
class _Keyed:
    table: str
    key: tuple[str, ...]
    same: str | None = None  # a column that must match where both have the key, else a clash


KEYED: Final = (_Keyed("memory_threads", ("thread_id",)),
                _Keyed("memory_summaries", ("thread_id",)),
                _Keyed("memory_working", ("scope", "key"), same="content"),
                _Keyed("batches", ("batch_id",)),
                _Keyed("batch_items", ("batch_id", "item_key")),
                _Keyed("eval_datasets", ("name", "version")),
                _Keyed("eval_examples", ("dataset", "version", "position")),
                _Keyed("eval_experiments", ("experiment_id",)),
                _Keyed("eval_results", ("experiment_id", "variant", "position")),
                _Keyed("eval_scores", ("span_id", "scorer")))
_FINGERPRINT: Final = ("workflow_id", "status", "journal_seq", "created_at")


@dataclass
class CopyReport:
    """What a copy did (or, with ``dry_run``, would do)."""

    source: str
    target: str
    dry_run: bool
    copied: dict[str, int] = field(default_factory=dict)  # rows per table
    present: dict[str, int] = field(default_factory=dict)  # already in the target: skipped
    refused: list[str] = field(default_factory=list)  # one line each: not copied, and why
    notes: list[str] = field(default_factory=list)  # renumbered workflow versions
    chain_problems: list[str] = field(default_factory=list)  # the target's, after the copy

    @property
    def copied_anything(self) -> bool:
        """Whether any row was (or would be) copied."""
        return any(self.copied.values())

    def lines(self) -> list[str]:
        """The report for people, one line each."""
        verb = "would copy" if self.dry_run else "copied"
        out = [f"{verb} from {self.source} to {self.target}:"]
        for table, rows in self.copied.items():
            there = self.present.get(table)
            out.append(f"  {table}: {rows}" + (f" ({there} already there)" if there else ""))
        out += [f"  note: {note}" for note in self.notes]
        out += [f"  refused: {reason}" for reason in self.refused]
        out += [f"  audit chain: {problem}" for problem in self.chain_problems]
        if not self.dry_run and not self.chain_problems:
            out.append("  the target's audit chain verifies")
        return out

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {"source": self.source, "target": self.target, "dry_run": self.dry_run,
                "copied": self.copied, "present": self.present, "refused": self.refused,
                "notes": self.notes, "chain_problems": self.chain_problems}


def copy_store(source: RunStore, target: RunStore, *, include_running: bool = False,
               dry_run: bool = False, actor: str | None = None,
               progress: Progress | None = None) -> CopyReport:
    """Copy ``source``'s history into ``target`` (see the module docstring); ``dry_run``
    counts what would be copied and changes nothing. ``actor`` (default: the current user)
    signs the ``store.copy`` audit entry."""
    src, dst = sql_store(source, "store copy"), sql_store(target, "store copy")
    if src.path == dst.path:
        raise StoreError(f"cannot copy {src.path} into itself")
    if dst.read_only and not dry_run:
        raise StoreError(f"{dst.path} is open read-only: nothing can be copied into it")
    report = CopyReport(source=src.path, target=dst.path, dry_run=dry_run)
    copier = _Copier(report, include_running, progress or (lambda table, done, total: None))
    with src.connection() as scon, dst.connection() as tcon:
        copier.run(scon, tcon, dry_run)
    imported, head = _audit_to_import(src, dst, report)
    if not dry_run and (report.copied_anything or imported):
        from fm_lab.identity import current_user

        after = {"source": src.path, "copied": {k: v for k, v in report.copied.items() if v},
                 "refused": len(report.refused), "audit": head}
        dst.append_audit([*imported, entry(STORE_COPY, actor or current_user(), after=after)])
    if not dry_run:
        report.chain_problems = verify(dst.audit_rows())
    return report


class _Copier:
    """The table-by-table copy of one :func:`copy_store` call."""

    def __init__(self, report: CopyReport, include_running: bool, progress: Progress) -> None:
        self.report = report
        self.include_running = include_running
        self.progress = progress
        self.versions: dict[tuple[str, int], int] = {}  # source (workflow, version) -> target
        self.runs: set[str] = set()  # run ids to copy

    def run(self, scon: Any, tcon: Any, dry_run: bool) -> None:
        names = {table: _common(scon, tcon, relation, table)
                 for table, relation in [("workflows", "workflows"), ("runs", "all_runs"),
                                         *RUN_TABLES, ("memory_messages", "memory_messages"),
                                         *((k.table, k.table) for k in KEYED)]}
        workflows = (copy_io.query(scon, f"select {', '.join(names['workflows'])} from "
                                         "workflows order by workflow_id, version")
                     if names["workflows"] else None)
        ids = ([] if workflows is None
               else sorted(set(workflows.column("workflow_id").to_pylist())))
        with copy_io.transaction(tcon, ids) if not dry_run else contextlib.nullcontext():
            if workflows is not None:
                self._write(tcon, "workflows", self._workflows(tcon, workflows), dry_run)
        with copy_io.transaction(tcon) if not dry_run else contextlib.nullcontext():
            if names["runs"]:
                self._choose_runs(scon, tcon)
                self._stream(scon, tcon, "runs", "all_runs", names["runs"], dry_run,
                             self._run_rows)
            for table, relation in RUN_TABLES:
                if names[table]:
                    keep = (self._span_filter(scon, tcon) if table == "spans"
                            else self._by_run)
                    self._stream(scon, tcon, table, relation, names[table], dry_run, keep)
            for keyed in KEYED:
                if names[keyed.table]:
                    self._copy_keyed(scon, tcon, keyed, names[keyed.table], dry_run)
            if names["memory_messages"]:
                self._copy_messages(scon, tcon, names["memory_messages"], dry_run)

    # ---- writing, counting ---------------------------------------------------------------
    def _write(self, tcon: Any, table: str, rows: pa.Table, dry_run: bool) -> None:
        self.report.copied[table] = self.report.copied.get(table, 0) + rows.num_rows
        if not dry_run:
            copy_io.write(tcon, table, rows)

    def _stream(self, scon: Any, tcon: Any, table: str, relation: str, names: list[str],
                dry_run: bool, keep: Callable[[pa.Table], pa.Table]) -> None:
        """Copy the rows of ``relation`` that ``keep`` returns, a batch at a time."""
        total, done = copy_io.count(scon, relation), 0
        self.report.copied.setdefault(table, 0)
        self.progress(table, 0, total)
        for batch in copy_io.read_batches(scon, relation, names):
            self._write(tcon, table, keep(batch), dry_run)
            done += batch.num_rows
            self.progress(table, done, total)

    # ---- workflow versions -----------------------------------------------------------------
    def _workflows(self, tcon: Any, rows: pa.Table) -> pa.Table:
        """The source's versions the target lacks, numbered for the target; fills
        :attr:`versions`."""
        import pyarrow as pa

        have = copy_io.existing(tcon, "workflows",
                                rows.select(["workflow_id"]).group_by("workflow_id")
                                .aggregate([]), ["version", "hash"])
        by_hash: dict[tuple[str, str], int] = {}
        newest: dict[str, int] = {}
        for wid, version, digest in zip(*(have.column(c).to_pylist() for c in
                                          ("workflow_id", "version", "hash")), strict=True):
            by_hash[(wid, digest)] = min(version, by_hash.get((wid, digest), version))
            newest[wid] = max(version, newest.get(wid, 0))
        keep, numbers = [], []
        for index, (wid, version, digest) in enumerate(zip(*(rows.column(c).to_pylist() for c in
                                                             ("workflow_id", "version", "hash")),
                                                           strict=True)):
            if (wid, digest) in by_hash:
                self.versions[(wid, version)] = by_hash[(wid, digest)]
                self.report.present["workflows"] = self.report.present.get("workflows", 0) + 1
                continue
            number = max(version, newest.get(wid, 0) + 1)
            if number != version:
                self.report.notes.append(f"workflow {wid} v{version} is stored as v{number} "
                                         "(the target has other content under that number)")
            by_hash[(wid, digest)] = newest[wid] = self.versions[(wid, version)] = number
            keep.append(index)
            numbers.append(number)
        chosen = rows.take(_indices(keep))
        return chosen.set_column(chosen.column_names.index("version"), "version",
                                 pa.array(numbers, pa.int32()))

    # ---- runs ------------------------------------------------------------------------------
    def _choose_runs(self, scon: Any, tcon: Any) -> None:
        """Decide which runs to copy, a top-level run and its child runs together."""
        import pyarrow as pa

        facts = copy_io.query(scon, "select run_id, parent_run_id, "
                              f"{', '.join(_FINGERPRINT)} from all_runs")
        rows = facts.to_pylist()
        parent = {r["run_id"]: r["parent_run_id"] for r in rows}
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(_root(row["run_id"], parent), []).append(row)
        there = {r["run_id"]: _fingerprint(r) for r in copy_io.existing(
            tcon, "runs", pa.table({"run_id": facts.column("run_id")}),
            list(_FINGERPRINT)).to_pylist()}
        present = 0
        for root, members in sorted(groups.items()):
            running = [m["run_id"] for m in members if m["status"] == "running"]
            found = [m for m in members if m["run_id"] in there]
            differ = [m["run_id"] for m in found if there[m["run_id"]] != _fingerprint(m)]
            if running and not self.include_running:
                self.report.refused.append(
                    f"run {root}: it is running in the source (live, or left by a process "
                    "that died: fm-lab recover it there first); --include-running copies it")
            elif differ:
                theirs = there[differ[0]]
                ours = _fingerprint(next(m for m in members if m["run_id"] == differ[0]))
                self.report.refused.append(
                    f"run {root}: the target has another run {differ[0]} (status "
                    f"{theirs[1]}, journal seq {theirs[2]}; the source's: {ours[1]}, "
                    f"{ours[2]}); the target's is kept")
            elif found and len(found) == len(members):
                present += len(members)
            elif found:
                self.report.refused.append(
                    f"run {root}: the target has only some of its child runs; the target's "
                    "are kept")
            else:
                self.runs.update(m["run_id"] for m in members)
        self.report.present["runs"] = present

    def _run_rows(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        rows = self._by_run(batch)
        versions = [self.versions.get((wid, version), version) for wid, version in zip(
            rows.column("workflow_id").to_pylist(), rows.column("workflow_version").to_pylist(),
            strict=True)]
        return rows.set_column(rows.column_names.index("workflow_version"), "workflow_version",
                               pa.array(versions, pa.int32()))

    def _by_run(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc

        return batch.filter(pc.is_in(_text(batch, "run_id"),
                                     value_set=pa.array(sorted(self.runs), pa.string())))

    def _span_filter(self, scon: Any, tcon: Any) -> Callable[[pa.Table], pa.Table]:
        """Spans of the runs copied, and spans of no run (standalone traces) the target lacks
        (by ``span_id``)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        loose = copy_io.query(scon, "select distinct s.span_id from all_spans s where s.run_id "
                              "is null or not exists (select 1 from all_runs r where r.run_id "
                              "= s.run_id)")
        there = set(copy_io.existing(tcon, "spans", loose).column("span_id").to_pylist())
        wanted = pa.array(sorted(set(loose.column("span_id").to_pylist()) - there), pa.string())
        self.report.present["spans"] = len(there)
        runs = pa.array(sorted(self.runs), pa.string())

        def keep(batch: pa.Table) -> pa.Table:
            return batch.filter(pc.or_kleene(pc.is_in(_text(batch, "run_id"), value_set=runs),
                                             pc.is_in(_text(batch, "span_id"),
                                                      value_set=wanted)))

        return keep

    # ---- memory, batches -------------------------------------------------------------------
    def _copy_keyed(self, scon: Any, tcon: Any, keyed: _Keyed, names: list[str],
                    dry_run: bool) -> None:
        rows = copy_io.query(scon, f"select {', '.join(names)} from {keyed.table}")
        also = [keyed.same] if keyed.same else []
        there = {tuple(r[: len(keyed.key)]): r[len(keyed.key):] for r in _tuples(
            copy_io.existing(tcon, keyed.table, rows.select(list(keyed.key)), also))}
        keep = []
        for index, row in enumerate(rows.select([*keyed.key, *also]).to_pylist()):
            key = tuple(row[k] for k in keyed.key)
            if key not in there:
                keep.append(index)
            elif keyed.same and there[key] != (row[keyed.same],):
                self.report.refused.append(
                    f"{keyed.table} {'/'.join(map(str, key))}: the target has other content; "
                    "the target's is kept")
        self.report.present[keyed.table] = len(there)
        self._write(tcon, keyed.table, rows.take(_indices(keep)), dry_run)

    def _copy_messages(self, scon: Any, tcon: Any, names: list[str], dry_run: bool) -> None:
        """Messages the target lacks, thread by thread, only after the target's last one."""

        rows = copy_io.query(scon, f"select {', '.join(names)} from memory_messages "
                             "order by thread_id, sequence")
        threads = rows.select(["thread_id"]).group_by("thread_id").aggregate([])
        ids = set(copy_io.existing(tcon, "memory_messages", rows.select(["message_id"]))
                  .column("message_id").to_pylist())
        last: dict[str, int] = {}
        for thread, sequence in _tuples(copy_io.existing(tcon, "memory_messages", threads,
                                                         ["sequence"])):
            last[thread] = max(sequence, last.get(thread, sequence))
        keep, refused = [], set()
        for index, (message, thread, sequence) in enumerate(zip(*(rows.column(c).to_pylist()
                                                                  for c in ("message_id",
                                                                            "thread_id",
                                                                            "sequence")),
                                                                strict=True)):
            if message in ids:
                continue
            if sequence <= last.get(thread, -1) or thread in refused:
                refused.add(thread)
                continue
            keep.append(index)
        for thread in sorted(refused):
            self.report.refused.append(
                f"memory thread {thread}: the target's thread has other messages at the same "
                "places; its new messages are not merged")
        keep = [i for i in keep if rows.column("thread_id")[i].as_py() not in refused]
        self.report.present["memory_messages"] = len(ids)
        self._write(tcon, "memory_messages", rows.take(_indices(keep)), dry_run)


def _audit_to_import(src: RunStore, dst: RunStore,
                     report: CopyReport) -> tuple[list[AuditEntry], dict[str, Any] | None]:
    """The source's audit entries the target has not imported yet, and what the
    ``store.copy`` entry records about them (None when there are none)."""
    rows = src.audit_rows()
    if not rows:
        return [], None
    problems = verify(rows)
    if problems:
        report.refused.append(f"audit log: the source's chain is broken ({problems[0]}); "
                              "its entries are not imported")
        return [], None
    chain_id = rows[0]["hash"]
    heads = {}  # last source seq imported by an earlier copy -> the source's hash there
    for row in dst.audit_rows(action=STORE_COPY):
        head = (json.loads(row["after"] or "{}") or {}).get("audit") or {}
        if head.get("chain") == chain_id:
            heads[int(head["last_seq"])] = str(head["head"])
    done = max(heads, default=0)
    if done and (done > len(rows) or rows[done - 1]["hash"] != heads[done]):
        report.refused.append("audit log: the source's chain no longer has the rows an "
                              "earlier copy imported; its entries are not imported")
        return [], None
    fresh = [r for r in rows if int(r["seq"]) > done]
    report.present["audit_log"] = done
    report.copied["audit_log"] = len(fresh)
    if not fresh:
        return [], None
    return [_as_entry(r) for r in fresh], {"chain": chain_id, "first_seq": fresh[0]["seq"],
                                           "last_seq": fresh[-1]["seq"],
                                           "head": fresh[-1]["hash"], "entries": len(fresh)}


def _as_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(at=row["acted_at"].timestamp(), actor=row["actor"], action=row["action"],
                      run_id=row["run_id"], path=row["path"],
                      before=None if row["before"] is None else json.loads(row["before"]),
                      after=None if row["after"] is None else json.loads(row["after"]))


def _common(scon: Any, tcon: Any, relation: str, table: str) -> list[str]:
    """The columns ``relation`` of the source and ``table`` of the target share (none when
    the source has no such table: an older store)."""
    theirs = copy_io.columns(tcon, table) or []
    ours = copy_io.columns(scon, relation) or []
    return [name for name in ours if name in theirs]


def _root(run_id: str, parent: dict[str, str | None]) -> str:
    seen = {run_id}
    while (up := parent.get(run_id)) is not None and up in parent and up not in seen:
        seen.add(up)
        run_id = up
    return run_id


def _fingerprint(row: dict[str, Any]) -> tuple[Any, ...]:
    created = row["created_at"]
    if isinstance(created, dt.datetime):
        created = created.astimezone(dt.UTC)
    return (row["workflow_id"], row["status"], int(row["journal_seq"]), created)


def _text(batch: pa.Table, name: str) -> pa.ChunkedArray:
    """A string column (a batch whose values are all NULL has Arrow's null type)."""
    import pyarrow as pa

    return batch.column(name).cast(pa.string())


def _indices(rows: list[int]) -> pa.Array:
    import pyarrow as pa

    return pa.array(rows, pa.int64())


def _tuples(table: pa.Table) -> Iterable[tuple[Any, ...]]:
    return zip(*(column.to_pylist() for column in table.columns), strict=True)
