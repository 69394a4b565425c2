"""Errors of the store."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A problem with the fm_lab store."""


class StoreLockedError(StoreError):
    """Another process (or a read-only store in this one) holds the DuckDB file."""

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"the fm_lab store {path} is held by {holder}; it is released when that holder "
            "finishes its current operation. Close its store (fm_lab.connect().close()) or "
            "point FM_LAB_HOME elsewhere."
        )


class StoreVersionError(StoreError):
    """The file was written by a newer fm_lab."""


class RunNotFoundError(StoreError, LookupError):
    """No run with that id."""


class StoreCorruptError(StoreError):
    """The store path is not a DuckDB file (a directory, garbage, an empty, truncated or
    damaged file)."""

    def __init__(self, path: str, problem: str,
                 advice: str = ("move it aside (and its .wal file, if any) or point "
                                "FM_LAB_STORE (or --store) elsewhere"),
                 ) -> None:
        self.path = path
        super().__init__(f"the fm_lab store {path} {problem}; {advice}")

    @classmethod
    def from_duckdb(cls, path: str, exc: Exception) -> StoreCorruptError:
        """Name what DuckDB's error means for the file at ``path``."""
        text = " ".join(str(exc).split())
        if "Is a directory" in text:
            return cls(path, "is a directory, not a DuckDB file")
        if "Permission denied" in text:
            return cls(path, "cannot be opened: permission denied")
        if "WAL does not match database file" in text:
            return cls(path, f"has a write-ahead log from another copy of the store ({path}.wal)",
                       "move that file aside (it is not this store's)")
        if "replaying WAL" in text:
            return cls(path, f"has a damaged write-ahead log ({path}.wal: {text})",
                       "move that file aside to open the store as of its last checkpoint "
                       "(the commits since are in that file only)")
        if "not a valid DuckDB database file" in text:
            return cls(path, "is not a DuckDB file (or is damaged)")
        return cls(path, f"cannot be read: it is damaged or truncated ({text})")
