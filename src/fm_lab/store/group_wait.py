"""Waiting, before opening a store file, for the runs other processes finished but have not
stored yet.

A process queues its finished short runs to store them in groups a moment later
(:mod:`fm_lab.store.run_groups`): each is durable in its journal, which that process keeps
locked and whose last record is the run's end. A process about to open the file waits until
such journals are gone (their group is in the file), so that a read sees every run that had
ended before it began, wherever it ran. A journal whose owner died is unlocked: it is not
waited for; the opening process ingests it as any dead process's journal. The wait ends after
``timeout_s`` in any case (the owner may be stopped, or unable to open the file): the read then
goes on without those runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from fm_lab.store.journal import ends_run, open_here, try_lock

_FIRST_DELAY_S = 0.002
_MAX_DELAY_S = 0.05


def queued_elsewhere(journal_dir: Path, mine: Callable[[str], bool]) -> list[Path]:
    """The journals in ``journal_dir`` of runs another live process finished and has not
    stored yet (``mine(run_id)``: a run this process queued itself)."""
    try:
        names = os.listdir(journal_dir)
    except OSError:
        return []
    found = []
    for name in names:
        if not name.endswith(".journal"):
            continue
        path = journal_dir / name
        if open_here(path) or mine(name[:-len(".journal")]):
            continue
        if _locked(path) and ends_run(path):
            found.append(path)
    return found


def wait_for_others(journal_dir: Path, mine: Callable[[str], bool], timeout_s: float) -> None:
    """Wait up to ``timeout_s`` until the runs other processes finished and queued for the
    store are in it (see the module's note)."""
    waiting = queued_elsewhere(journal_dir, mine)
    deadline = time.monotonic() + timeout_s
    delay = _FIRST_DELAY_S
    while waiting and time.monotonic() < deadline:
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, _MAX_DELAY_S)
        waiting = [path for path in waiting if path.exists() and _locked(path)]


def _locked(path: Path) -> bool:
    """Whether a live process holds the journal (False if it is gone or its owner died)."""
    fd = try_lock(path)
    if fd is None:
        return path.exists()
    os.close(fd)
    return False
