"""Short runs finished in a DuckDB file store, ingested together a moment later.

A short run's ingest costs about 8 DuckDB statements of 0.3-2 ms each, several times the
engine's own cost of the run; a group of runs pays them once (``benchmarks/engine_overhead.py``,
``--section fixed``). A run that started and ended since it was last ingested (its records:
its start, nodes, spans, its end) is therefore not ingested at its end but queued here, its
journal kept on disk, durable and locked (other processes leave it alone). The queue goes into
the file in one transaction (one insert per table for every queued run):

- when it holds :data:`GROUP_RUNS` runs, :data:`GROUP_RECORDS` records or
  :data:`GROUP_BYTES` of journal text;
- :data:`GROUP_DELAY_S` after its first run joined, on a background thread (outside a hold;
  ``Store(group_delay_s=...)``, ``$FM_LAB_GROUP_DELAY_S``; 0 stores each run at its end);
- when a :meth:`~fm_lab.store.duckdb_store.Store.hold` ends (inside one, no other process can
  open the file, and the queue waits for the hold's end), when the store closes, and at the
  interpreter's exit;
- before anything in this process reads or writes the file through any store (:func:`storing`,
  from ``Store.connection``). Another process about to open the file waits for the runs queued
  here first (:mod:`fm_lab.store.group_wait`): a read sees every run that ended before it.

A queued run keeps its records' journal text, not the record objects (the caller may change
its inputs and outputs once the run returned). Journals are removed once the group is stored;
a process that dies first leaves them, unlocked, and the next open ingests them as any dead
process's journals. A group that cannot be stored, or whose storing is interrupted, is queued
again and the error raised (logged, on the background thread, which tries again later).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fm_lab.store import env
from fm_lab.store.columns import SMALL

if TYPE_CHECKING:
    from fm_lab.store.records import JournalRecord

GROUP_RUNS = 64  # runs queued before the group is stored
GROUP_RECORDS = 20_000  # or records
GROUP_BYTES = 16 * 1024 * 1024  # or bytes of journal text
GROUP_DELAY_S = 0.05  # outside a hold, a group is stored this long after its first run joined
GROUP_DELAY_ENV = "FM_LAB_GROUP_DELAY_S"
_KINDS = frozenset({"start", "node", "span", "run"})


@dataclass(frozen=True)
class Deferred:
    """A finished run waiting in a group: its records' journal text by ``seq`` (start first,
    end last). The text, not the record objects: those are the caller's outputs and inputs,
    which it may change once the run has returned; the journal's text is what happened."""

    run_id: str
    texts: dict[int, bytes]
    lock: int | None = None  # a descriptor holding the journal's lock until it is stored

    @classmethod
    def of(cls, run_id: str, records: Sequence[JournalRecord],
           texts: Mapping[int, bytes]) -> Deferred | None:
        """The run to queue, or None when a record's journal text is not at hand."""
        if any(r["seq"] not in texts for r in records):
            return None
        return cls(run_id, {r["seq"]: texts[r["seq"]] for r in records})

    def release(self) -> None:
        """Let go of the journal's lock (the run is stored, or this process forgets it)."""
        if self.lock is not None:
            with contextlib.suppress(OSError):
                os.close(self.lock)

    @property
    def size(self) -> int:
        """Bytes of journal text."""
        return sum(map(len, self.texts.values()))

    def records(self) -> list[JournalRecord]:
        """The records, decoded from their journal text as a recovery would."""
        return [json.loads(self.texts[seq]) for seq in sorted(self.texts)]


@dataclass
class _Group:
    runs: list[Deferred] = field(default_factory=list)
    records: int = 0
    size: int = 0  # bytes of journal text
    in_store: set[str] = field(default_factory=set)  # runs a storer has taken, on their way in
    storing: int = 0  # threads inside storing(): queued runs may be on their way in
    lock: threading.RLock = field(default_factory=threading.RLock)  # one storer at a time


_groups: dict[str, _Group] = {}  # by store path
_lock = threading.Lock()  # guards _groups and the counts (never held while storing)


def group_delay() -> float:
    """How long a finished run may wait to be stored with others outside a hold:
    ``$FM_LAB_GROUP_DELAY_S`` (seconds, up to 60; 0: not at all), else
    :data:`GROUP_DELAY_S`."""
    return env.seconds(GROUP_DELAY_ENV, GROUP_DELAY_S, maximum=60)


def fits(records: Sequence[JournalRecord]) -> bool:
    """True for a whole short run: its start, nodes and spans (up to
    :data:`~fm_lab.store.columns.SMALL` of each, as a short run's ingest takes them), its
    end last, nothing else (suspensions, answers and steps take the store's own ingest)."""
    if not records or records[0]["k"] != "start" or records[-1]["k"] != "run" \
            or len(records) > 2 * SMALL + 2:
        return False
    kinds = Counter(r["k"] for r in records)
    return (set(kinds) <= _KINDS and kinds["run"] == 1 and kinds["node"] <= SMALL
            and kinds["span"] <= SMALL)


def add(path: str, run: Deferred) -> None:
    """Queue ``run`` for the store at ``path``."""
    with _lock:
        group = _groups.setdefault(path, _Group())
        group.runs.append(run)
        group.records += len(run.texts)
        group.size += run.size


def full(path: str, times: int = 1) -> bool:
    """Whether ``path``'s group is to be stored before another run joins it (``times``:
    whether it holds that many groups' worth: one that could not be stored takes runs up to
    :data:`OVERFULL` times the caps, then none)."""
    with _lock:
        group = _groups.get(path)
        return group is not None and (len(group.runs) >= GROUP_RUNS * times
                                      or group.records >= GROUP_RECORDS * times
                                      or group.size >= GROUP_BYTES * times)


OVERFULL = 4


def put_back(path: str, runs: Sequence[Deferred]) -> None:
    """Queue ``runs`` again, first (storing them failed or was interrupted)."""
    with _lock:
        group = _groups.setdefault(path, _Group())
        group.runs[:0] = runs
        group.records += sum(len(r.texts) for r in runs)
        group.size += sum(r.size for r in runs)


@contextlib.contextmanager
def storing(path: str) -> Iterator[list[Deferred]]:
    """The runs queued for ``path``, taken to be stored in the block. One thread at a time
    (others wait here, so none reads the file while runs it should see are on their way
    in); callers take their store's own lock first, then this one."""
    with _lock:
        group = _groups.setdefault(path, _Group())
        group.storing += 1
    taken: set[str] = set()
    try:
        with group.lock:
            with _lock:
                runs, group.runs, group.records, group.size = group.runs, [], 0, 0
                taken = {run.run_id for run in runs}
                group.in_store |= taken
            yield runs
    finally:
        with _lock:
            group.in_store -= taken
            group.storing -= 1
            if not group.runs and not group.storing and _groups.get(path) is group:
                del _groups[path]


def wait_stored(path: str) -> None:
    """Wait while another thread stores ``path``'s group (for a reader that cannot store
    it: a read-only store)."""
    with _lock:
        group = _groups.get(path)
        if group is None or not group.storing:
            return
    with group.lock:
        pass


def queued(path: str, run_id: str) -> bool:
    """Whether ``run_id`` waits in ``path``'s group (or is being stored)."""
    with _lock:
        group = _groups.get(path)
        return group is not None and (run_id in group.in_store
                                      or any(r.run_id == run_id for r in group.runs))


def pending(path: str) -> bool:
    """Whether runs wait in ``path``'s group or are being stored."""
    with _lock:
        group = _groups.get(path)
        return group is not None and (bool(group.runs) or group.storing > 0)


_forked = False  # this process is a fork: see in_fork()


def in_fork() -> bool:
    """Whether this process was forked from one that imported this module. A forked worker
    (a ``multiprocessing`` fork pool's) usually ends with ``os._exit`` or a ``SIGTERM``, which
    skip the exit's storing: outside a hold, its runs are stored at their end."""
    return _forked


def _forget_after_fork() -> None:
    """A forked child's groups are its parent's to store (and their journals' locks)."""
    global _lock, _forked
    _lock = threading.Lock()
    _forked = True
    for group in _groups.values():
        for run in group.runs:
            run.release()  # this copy of the descriptor only: the parent's keeps the lock
    _groups.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
