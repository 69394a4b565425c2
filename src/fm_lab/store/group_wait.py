"""Waiting, before opening a store file, for the runs other processes finished but have not
stored yet.

A process queues its finished short runs to store them in groups a moment later
(:mod:`fm_lab.store.run_groups`): each is durable in its journal, which that process keeps
locked and whose last record is the run's end. A process about to open the file waits until
such journals are gone (their group is in the file), so that a read sees every run that had
ended before it began, wherever it ran. A journal whose owner died is unlocked: it is not
waited for; a writable store opening the file takes it in first, as any dead process's
journal (a forked worker that ended with ``os._exit``, a killed kernel). The wait ends after
``timeout_s`` in any case (the owner may be stopped, or unable to open the file): the read then
goes on without those runs. Probing needs no write access (a shared lock on a read-only
descriptor).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from fm_lab.store.journal import ends_run, locked_elsewhere, open_here

_FIRST_DELAY_S = 0.002
_MAX_DELAY_S = 0.05


def queued_elsewhere(journal_dir: Path, mine: Callable[[str], bool]
                     ) -> tuple[list[Path], bool]:
    """The journals in ``journal_dir`` of runs another live process finished and has not
    stored yet (``mine(run_id)``: a run this process queued itself), and whether a dead
    process left a finished run's journal (for the next writable open to take in)."""
    try:
        names = os.listdir(journal_dir)
    except OSError:
        return [], False
    found, dead = [], False
    for name in names:
        if not name.endswith(".journal"):
            continue
        path = journal_dir / name
        if open_here(path) or mine(name[:-len(".journal")]) or not ends_run(path):
            continue
        if locked_elsewhere(path):
            found.append(path)
        else:
            dead = True
    return found, dead


def wait_for_others(journal_dir: Path, mine: Callable[[str], bool], timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` until the runs other processes finished and queued for the
    store are in it (see the module's note). True when a dead process left a finished run's
    journal, or one's owner died meanwhile: a writable store then takes them in."""
    waiting, dead = queued_elsewhere(journal_dir, mine)
    deadline = time.monotonic() + timeout_s
    delay = _FIRST_DELAY_S
    while waiting and time.monotonic() < deadline:
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, _MAX_DELAY_S)
        still = []
        for path in waiting:
            if locked_elsewhere(path):
                still.append(path)
            elif path.exists():
                dead = True  # its owner died before storing it
        waiting = still
    return dead
