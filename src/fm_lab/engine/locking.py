"""One process at a time per run: resume, signal and cancel take the run's journal lock.

The journal's ``flock`` already marks the process that runs a run; taking it *before* reading
the run makes every change to a stored run a critical section, so two answers given at once
(two managers, two processes, a widget and a cell) are applied one after the other, each on
the run as the other left it, instead of both starting from the same snapshot.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from fm_lab.store.journal import RunLockedError

if TYPE_CHECKING:
    from fm_lab.store.base import RunStore
    from fm_lab.store.journal import RunJournal

RESUME_WAIT_S = 60.0  # how long a resume waits for another process that is running the run


async def lock_run(store: RunStore, run_id: str,
                   wait_s: float = RESUME_WAIT_S) -> RunJournal | None:
    """The run's journal, locked by this process (None for a memory store). Waits up to
    ``wait_s`` while another process runs the run, then raises :class:`RunLockedError`."""
    deadline = time.monotonic() + wait_s
    delay = 0.002
    while True:
        try:
            return store.open_journal(run_id)
        except RunLockedError:
            if time.monotonic() >= deadline:
                raise RunLockedError(
                    f"run {run_id} is being run by another process (waited {wait_s:g} s for "
                    "it to suspend or end); nothing was changed: try again later"
                ) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)


def unlock_run(journal: RunJournal | None, stored: bool) -> None:
    """Release the run: ``stored`` when everything the journal holds is in the store (the
    file goes); a journal this process created and left empty goes too."""
    if journal is not None:
        journal.close(remove=stored or journal.created)
