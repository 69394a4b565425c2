"""What a store remembers of its file outside it, so that a deleted or replaced DuckDB file
does not lose runs without a trace: ``<db>.journal/store.json`` records when the file was
created, and which earlier file it replaced."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from fm_lab.store.journal import ends_run, locked_elsewhere

log = logging.getLogger("fm_lab.store")
_NAME = "store.json"


def _read(journal_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((journal_dir / _NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _when(stamp: Any) -> str:
    if not isinstance(stamp, int | float):
        return "at an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def note_created(db_path: str, journal_dir: Path) -> None:
    """Record that the store file at ``db_path`` was just created; warn when an earlier file
    existed (its record is there but the file was gone)."""
    before = _read(journal_dir)
    record: dict[str, Any] = {"path": db_path, "created": time.time()}
    if before.get("created") is not None:
        record["replaced"] = before["created"]
        log.warning("fm_lab store %s was gone (created %s); a new, empty one was made: runs "
                    "stored in the old file are not in it", db_path, _when(before["created"]))
    try:
        journal_dir.mkdir(parents=True, exist_ok=True)
        (journal_dir / _NAME).write_text(json.dumps(record), encoding="utf-8")
    except OSError:  # a read-only folder: the store still works, without this memory
        pass


def missing_run(run_id: str, db_path: str, journal_dir: Path, journal: Path) -> str:
    """Why ``run_id`` is not in the store, with every trace of the store file's past."""
    known = _read(journal_dir)
    parts = [f"no run {run_id!r} in {db_path}"]
    if not Path(db_path).exists():
        parts.append("the store file does not exist" + (
            f" (one was created {_when(known['created'])}: it was deleted or moved, and the "
            "runs stored in it with it)" if known.get("created") is not None
            else " (nothing stored there yet, or it was deleted or moved)"))
    elif known.get("replaced") is not None:
        parts.append(f"this store file was created {_when(known.get('created'))}, after the "
                     f"previous one (created {_when(known['replaced'])}) disappeared: runs "
                     "stored before are lost with it")
    if ends_run(journal):
        parts.append(f"its journal {journal} is there and ends with the run's end: " + (
            "the process that ran it has not stored it yet (it is stopped, or cannot open "
            "the store file)" if locked_elsewhere(journal) else "the process that ran it "
            "ended before storing it; the next writable open of the store takes it in"))
    elif journal.exists() and journal.stat().st_size > 0:  # (a resume's lock empties it)
        parts.append(f"its journal {journal} is there (a live process may be running it)")
    return "; ".join(parts)
