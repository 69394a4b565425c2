"""Ids that become file names (run ids, batch ids): one safe character set, checked in one
place, and the only way such a name is joined to its folder.

A child run's id is ``<run_id>.<hash>``, so dots are legal; ``..``, slashes and a leading dot
are not, so a path built from an id never leaves its folder.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_ID_LENGTH = 200  # with ".journal" still under the 255 bytes of a file name
_SAFE_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_ID_LENGTH - 1}}}")


class InvalidIdError(ValueError):
    """An id that cannot name a run (or batch): empty, too long, or with unsafe characters."""


class RunIdInUseError(ValueError):
    """A run id given for a new run names an existing (or live) run."""


def validate_run_id(run_id: object, what: str = "run id") -> str:
    """Return ``run_id`` if it is a safe id, else raise :class:`InvalidIdError`.

    >>> validate_run_id("0193a1b2c3d4e5f6.9a8b7c6d5e")
    '0193a1b2c3d4e5f6.9a8b7c6d5e'
    """
    if not isinstance(run_id, str) or not _SAFE_ID.fullmatch(run_id) or ".." in run_id:
        shown = repr(run_id) if not isinstance(run_id, str) or len(run_id) <= 60 \
            else repr(run_id[:60] + "...")
        raise InvalidIdError(
            f"{what} {shown} is not allowed: use 1 to {MAX_ID_LENGTH} letters, digits, '.', "
            "'_' or '-', starting with a letter or digit, without '..'"
        )
    return run_id


def id_path(folder: Path, run_id: str, suffix: str = "", what: str = "run id") -> Path:
    """``folder/<run_id><suffix>`` for a checked ``run_id``: always directly inside ``folder``.

    >>> id_path(Path("j"), "r1", ".journal").as_posix()
    'j/r1.journal'
    """
    path = folder / f"{validate_run_id(run_id, what)}{suffix}"
    if path.parent != folder:  # cannot happen for a valid id; a guard for future suffixes
        raise InvalidIdError(f"{what} {run_id!r} does not name a file in {folder}")
    return path
